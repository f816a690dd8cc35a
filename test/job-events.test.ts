import { KEY_A, KEY_B, startTestService, useServiceAndTarget } from './helpers/service';
import { waitFor } from './helpers/wait';
import { openEventStream, type StreamEvent } from './helpers/event-stream';

// The API alone: a submitted job stays queued until a test starts a worker on the same database.
const env = useServiceAndTarget({ roles: { api: true, worker: false } });

type JobEvent = StreamEvent;

/** Opens GET /v1/jobs/{id}/events and collects its events until the server closes the stream. */
const openEvents = (jobId: string, headers: Record<string, string> = {}, key = KEY_A) =>
  openEventStream(`${env.service.baseUrl}/v1/jobs/${jobId}/events`, headers, key);

const statuses = (events: JobEvent[]) => events.map((e) => e.data.status);

describe('GET /v1/jobs/{job_id}/events', () => {
  test('streams a job from queued to completed, one event per status in order, then closes', async () => {
    const submitted = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/held?name=events`,
    });
    const jobId = submitted.body.job_id;
    const stream = await openEvents(jobId);
    expect(stream.res.status).toBe(200);
    expect(stream.res.headers.get('content-type')).toMatch(/^text\/event-stream/);
    await waitFor(() => stream.events.length === 1, { what: 'the current state first' });
    expect(stream.events[0]!.data).toMatchObject({ job_id: jobId, status: 'queued' });

    const worker = await startTestService({
      databaseUrl: env.service.databaseUrl,
      roles: { api: false, worker: true },
    });
    try {
      await waitFor(() => stream.events.length === 2, { what: 'the processing event', timeoutMs: 30_000 });
      expect(stream.events[1]!.data.status).toBe('processing');
      env.target.release('events');
      await stream.closed;
    } finally {
      await worker.stop();
    }
    expect(statuses(stream.events)).toEqual(['queued', 'processing', 'completed']);
    expect(stream.events[2]!.data.result.data.content).toBe('released');
    const ids = stream.events.map((e) => e.id);
    expect(ids).toEqual([...ids].sort((a, b) => a - b));
    expect(new Set(ids).size).toBe(3);
    // The terminal event matches what a poll answers afterwards.
    const polled = await env.service.call('GET', `/v1/jobs/${jobId}`);
    expect(stream.events[2]!.data).toEqual(polled.body.data);

    // Reconnecting after the processing event: only what was missed, then the stream closes.
    const resumed = await openEvents(jobId, { 'Last-Event-ID': String(ids[1]) });
    await resumed.closed;
    expect(resumed.res.status).toBe(200);
    expect(resumed.events).toEqual([stream.events[2]]);

    // Reconnecting with the terminal event's id: nothing was missed, 204 (an EventSource stops).
    const caughtUp = await openEvents(jobId, { 'Last-Event-ID': String(ids[2]) });
    await caughtUp.closed;
    expect(caughtUp.res.status).toBe(204);
    expect(caughtUp.events).toEqual([]);
  });

  test("an unknown job, a malformed id and another key's job answer 404 JOB_NOT_FOUND", async () => {
    const submitted = await env.service.call('POST', '/v1/scrape/async', {
      url: `${env.target.origin}/page`,
    });
    for (const [id, key] of [
      ['00000000-0000-4000-8000-000000000000', KEY_A],
      ['not-a-job', KEY_A],
      [submitted.body.job_id as string, KEY_B],
    ] as const) {
      const res = await fetch(`${env.service.baseUrl}/v1/jobs/${id}/events`, {
        headers: { 'x-api-key': key },
      });
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ success: false, code: 'JOB_NOT_FOUND' });
    }
  });
});
