const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** A job or batch id as the store keeps it (lower case), or undefined when it cannot name one. */
export function idParam(value: string): string | undefined {
  return UUID.test(value) ? value.toLowerCase() : undefined;
}
