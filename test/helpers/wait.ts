type Truthy<T> = Exclude<T, false | 0 | '' | null | undefined>;

/**
 * Polls `condition` until it returns something truthy, and returns that. When `timeoutMs` pass
 * first it fails, naming what it waited for (`what` may be a function, to say what was last seen). The deadline bounds a broken run, not a slow machine:
 * make it generous, since a passing run returns as soon as the condition holds.
 */
export async function waitFor<T>(
  condition: () => T | Promise<T>,
  {
    what,
    timeoutMs = 10_000,
    intervalMs = 20,
  }: { what: string | (() => string); timeoutMs?: number; intervalMs?: number },
): Promise<Truthy<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await condition();
    if (value) return value as Truthy<T>;
    if (Date.now() > deadline) {
      throw new Error(
        `timed out after ${timeoutMs} ms waiting for ${typeof what === 'string' ? what : what()}`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
