import { checkEvent } from './contract-check';
import { KEY_A } from './service';

export interface StreamEvent {
  id: number;
  data: any;
}

/**
 * Opens a Server-Sent Events route and collects its events until the server closes the stream.
 * Each event is checked against what the API document declares of the route's events; `closed`
 * rejects on the first that breaks it.
 */
export async function openEventStream(url: string, headers: Record<string, string> = {}, key = KEY_A) {
  const res = await fetch(url, { headers: { 'x-api-key': key, ...headers } });
  const events: StreamEvent[] = [];
  const closed = (async () => {
    if (!res.body) return;
    const decoder = new TextDecoder();
    let buffer = '';
    for await (const chunk of res.body) {
      buffer += decoder.decode(chunk as Uint8Array, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const id = /^id: (.*)$/m.exec(block)?.[1];
        const data = [...block.matchAll(/^data: (.*)$/gm)].map((m) => m[1]).join('\n');
        if (id === undefined) continue;
        const parsed: unknown = JSON.parse(data);
        checkEvent(new URL(url).pathname, block, parsed);
        events.push({ id: Number(id), data: parsed });
      }
    }
  })();
  // Handled here too, so a test that does not wait for the end is spared an unhandled rejection.
  closed.catch(() => undefined);
  return { res, events, closed };
}
