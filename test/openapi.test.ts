import fs from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { z } from 'zod';
import { openApiDocument } from '../src/contract/openapi-document';
import { errorBody } from '../src/contract/errors';
import { job } from '../src/contract/responses';
import { PUBLIC_ROUTES, ROUTES } from '../src/contract/routes';
import { createApp } from '../src/http/app';
import { startTestService, type TestService } from './helpers/service';

let service: TestService;
let document: any;

beforeAll(async () => {
  service = await startTestService();
  const res = await service.call('GET', '/openapi.json', undefined, null);
  expect(res.status).toBe(200);
  document = res.body;
});

afterAll(async () => {
  await service?.stop();
});

/** Express's routes, each with its method and full path (`/v1/jobs/:job_id`), found through the mounted routers. */
function expressRoutes(stack: any[], prefixMatches: ((path: string) => boolean)[] = []): any[] {
  return stack.flatMap((layer) => {
    if (layer.route) return [{ route: layer.route, mounts: prefixMatches }];
    if (layer.handle?.stack)
      return expressRoutes(layer.handle.stack, [...prefixMatches, (p) => layer.match(p)]);
    return [];
  });
}

/** `/v1/jobs/{job_id}` → `/v1/jobs/:job_id`. */
const expressPath = (path: string) => path.replace(/\{(\w+)\}/g, ':$1');

describe('GET /openapi.json', () => {
  test('is answered without a key and is a valid OpenAPI 3.1 document', async () => {
    expect(document.openapi).toMatch(/^3\.1\./);
    const result = await new Validator().validate(document);
    expect(result.errors).toBeUndefined();
    expect(result.valid).toBe(true);
  });

  test("the document's job schema lists exactly the job schema's fields", () => {
    expect(Object.keys(document.components.schemas.Job.properties).sort()).toEqual(
      Object.keys(job.shape).sort(),
    );
  });

  test('a field added to a schema appears in the document', () => {
    const registered = z.globalRegistry.get(job)!;
    z.globalRegistry.remove(job);
    const extended = job.extend({ priority: z.int() }).meta(registered);
    try {
      const generated = openApiDocument('test') as any;
      expect(Object.keys(generated.components.schemas.Job.properties)).toEqual([
        ...Object.keys(job.shape),
        'priority',
      ]);
    } finally {
      z.globalRegistry.remove(extended);
      job.meta(registered);
    }
  });

  test('every example in the document is allowed by its own schema', () => {
    const schemas = ROUTES.flatMap((route) => [
      route.body,
      ...Object.values(route.responses).map((r) => r.schema),
    ]);
    const checked = [errorBody, ...schemas].flatMap((schema) =>
      schema
        ? ((z.globalRegistry.get(schema)?.examples ?? []) as unknown[]).map((example) => ({
            schema,
            example,
          }))
        : [],
    );
    expect(checked.length).toBeGreaterThan(5);
    for (const { schema, example } of checked) expect(schema.safeParse(example).error).toBeUndefined();
  });

  test('the contract imports nothing but zod and itself, so a client can import it alone', () => {
    const dir = path.resolve(__dirname, '../src/contract');
    const imports = fs
      .readdirSync(dir)
      .flatMap((file) => [...fs.readFileSync(path.join(dir, file), 'utf8').matchAll(/from '([^']+)'/g)])
      .map(([, from]) => from);
    expect(imports.filter((from) => from !== 'zod' && !/^\.\/[\w-]+$/.test(from ?? ''))).toEqual([]);
  });

  test('every route the app serves is in the route table, with its method', () => {
    const app = createApp(service.running.context) as any;
    const routes = expressRoutes(app.router.stack);
    expect(routes.length).toBeGreaterThan(15);
    const declared = ROUTES.map((r) => ({ method: r.method, path: expressPath(r.path) }));
    const missing = routes.flatMap(({ route, mounts }) =>
      Object.keys(route.methods)
        .filter((method) => method !== '_all')
        .filter(
          (method) =>
            !declared.some(
              (d) =>
                d.method === method &&
                d.path.endsWith(route.path) &&
                mounts.every((match: (p: string) => boolean) =>
                  match(d.path.slice(0, d.path.length - route.path.length) || '/'),
                ),
            ),
        )
        .map((method) => `${method.toUpperCase()} ${route.path}`),
    );
    expect(missing).toEqual([]);
  });

  test('publishes the API, its probes and metrics, and none of the web pages or their files', () => {
    const published = Object.entries(document.paths).flatMap(([path, ops]: [string, any]) =>
      Object.keys(ops).map((method) => `${method.toUpperCase()} ${path}`),
    );
    expect(published.sort()).toEqual(PUBLIC_ROUTES.map((r) => `${r.method.toUpperCase()} ${r.path}`).sort());
    expect(Object.keys(document.paths).filter((path) => /^\/(dashboard|docs)\b/.test(path))).toEqual([]);
    for (const path of ['/healthz', '/readyz', '/metrics'])
      expect(document.paths[path].get.tags).toEqual(['operations']);
    expect(document.components.securitySchemes).toEqual({ apiKey: expect.any(Object) });
  });

  test('names each operation for what it does, under a tag of its resource, with a summary and a description', () => {
    const operations = Object.entries(document.paths).flatMap(([path, ops]: [string, any]) =>
      Object.entries(ops).map(([method, op]: [string, any]) => ({
        route: `${method.toUpperCase()} ${path}`,
        op,
      })),
    );
    expect(Object.fromEntries(operations.map(({ route, op }) => [route, op.operationId]))).toEqual({
      'POST /v1/scrape': 'scrape',
      'POST /v1/scrape/async': 'submitScrapeJob',
      'POST /v1/scrape/batch': 'submitScrapeBatch',
      'GET /v1/jobs': 'listJobs',
      'GET /v1/jobs/{job_id}': 'getJob',
      'DELETE /v1/jobs/{job_id}': 'cancelJob',
      'GET /v1/jobs/{job_id}/events': 'streamJobEvents',
      'GET /v1/jobs/{job_id}/webhooks': 'listWebhookDeliveries',
      'POST /v1/jobs/{job_id}/webhooks/redeliver': 'redeliverWebhook',
      'GET /v1/batches/{batch_id}': 'getBatch',
      'DELETE /v1/batches/{batch_id}': 'cancelBatch',
      'GET /v1/batches/{batch_id}/events': 'streamBatchEvents',
      'GET /healthz': 'getHealth',
      'GET /readyz': 'getReadiness',
      'GET /metrics': 'getMetrics',
      'GET /openapi.json': 'getOpenApiDocument',
    });
    const tags = document.tags.map((t: any) => t.name);
    expect(tags).toEqual(['scrape', 'jobs', 'batches', 'webhooks', 'operations']);
    for (const tag of document.tags) expect(tag.description).toEqual(expect.any(String));
    for (const { op } of [...operations, { op: document.webhooks.jobEnded.post }]) {
      expect(op.summary).toEqual(expect.any(String));
      expect(op.description).toEqual(expect.any(String));
      expect(op.tags).toHaveLength(1);
      expect(tags).toContain(op.tags[0]);
      expect(Object.keys(op.responses).some((status) => /^2/.test(status))).toBe(true);
      expect(Object.keys(op.responses).some((status) => /^4/.test(status))).toBe(true);
      expect(op.security).toBeDefined();
    }
    expect(document.webhooks.jobEnded.post.operationId).toBe('jobEnded');
  });

  test('publishes numbers as numbers, the status filter as a list and times as date-times', () => {
    const query = (path: string, method = 'get') =>
      Object.fromEntries(
        document.paths[path][method].parameters
          .filter((p: any) => p.in === 'query')
          .map((p: any) => [p.name, p]),
      );
    const limit = { type: 'integer', minimum: 1, maximum: 1000, default: 100 };
    const jobs = query('/v1/jobs');
    expect(jobs.limit.schema).toEqual(limit);
    expect(query('/v1/batches/{batch_id}').limit.schema).toEqual(limit);
    expect(jobs.status).toMatchObject({
      style: 'form',
      explode: false,
      schema: {
        type: 'array',
        items: { enum: ['queued', 'processing', 'completed', 'failed', 'timed_out', 'cancelled'] },
      },
    });
    expect(jobs.since.schema).toEqual({ type: 'string', format: 'date-time' });
    expect(jobs.until.schema).toEqual({ type: 'string', format: 'date-time' });
    expect(query('/v1/jobs/{job_id}').wait.schema).toMatchObject({
      type: 'number',
      exclusiveMinimum: 0,
      maximum: 60,
    });
  });

  test('the server accepts every query value the document allows, written as the document says, and refuses those past its bounds', async () => {
    // As a generated client writes a parameter: a list comma-separated (explode: false), numbers as text.
    const write = (values: Record<string, unknown>) =>
      new URLSearchParams(
        Object.entries(values).map(([name, value]): [string, string] => [
          name,
          Array.isArray(value) ? value.join(',') : String(value),
        ]),
      ).toString();
    const unknownJob = '/v1/jobs/00000000-0000-4000-8000-000000000000';
    const unknownBatch = '/v1/batches/00000000-0000-4000-8000-000000000000';
    const allowed: [string, Record<string, unknown>, number][] = [
      ['/v1/jobs', { limit: 1, status: ['failed', 'timed_out'], since: '2026-11-30T08:00:00Z' }, 200],
      ['/v1/jobs', { limit: 1000, status: ['queued'], until: '2026-11-30T09:00:00.123+02:00' }, 200],
      [unknownBatch, { limit: 1 }, 404],
      [unknownBatch, { limit: 1000 }, 404],
      // A malformed wait is refused (400) before the job is looked for (404).
      [unknownJob, { wait: 0.5 }, 404],
      [unknownJob, { wait: 60 }, 404],
    ];
    for (const [path, values, status] of allowed)
      expect([path, values, (await service.call('GET', `${path}?${write(values)}`)).status]).toEqual([
        path,
        values,
        status,
      ]);
    const refused: [string, Record<string, unknown>][] = [
      ['/v1/jobs', { limit: 0 }],
      ['/v1/jobs', { limit: 1001 }],
      ['/v1/jobs', { status: ['failed', 'lost'] }],
      ['/v1/jobs', { since: 'yesterday' }],
      [unknownBatch, { limit: 1001 }],
      [unknownJob, { wait: 0 }],
      [unknownJob, { wait: 60.5 }],
    ];
    for (const [path, values] of refused)
      expect([path, values, (await service.call('GET', `${path}?${write(values)}`)).status]).toEqual([
        path,
        values,
        400,
      ]);
  });

  test("describes both event streams: each event's data as a component, and the 204 of a stream already read to its end", () => {
    const streams = {
      '/v1/jobs/{job_id}/events': 'Job',
      '/v1/batches/{batch_id}/events': 'BatchSummary',
    };
    for (const [path, component] of Object.entries(streams)) {
      const op = document.paths[path].get;
      expect(op.responses['200'].content).toEqual({
        'text/event-stream': { schema: { $ref: `#/components/schemas/${component}` } },
      });
      expect(op.responses['200'].description).toContain(component);
      expect(op.description).toMatch(/`message`.*`id`.*microseconds.*`data`/);
      expect(op.responses['204']).toBeDefined();
      expect(op.parameters.map((p: any) => p.name)).toContain('Last-Event-ID');
    }
    expect(Object.keys(document.components.schemas.BatchSummary.properties).sort()).toEqual(
      ['batch_id', 'counts', 'created_at', 'total'].sort(),
    );
  });

  test('describes the rendering fields of a scrape request, and the screenshot and engine of its answer', () => {
    const { schemas } = document.components;
    for (const request of [schemas.ScrapeRequest, schemas.AsyncScrapeRequest]) {
      const fields = request.properties;
      expect(fields.js_rendering).toMatchObject({ type: 'boolean', default: false });
      expect(fields.mode).toMatchObject({
        type: 'string',
        enum: ['auto', 'http', 'browser'],
        default: 'auto',
      });
      expect(fields.wait_for.anyOf).toEqual([
        expect.objectContaining({ type: 'string' }),
        expect.objectContaining({ type: 'integer', minimum: 0, maximum: 60_000 }),
      ]);
      expect(fields.screenshot).toMatchObject({ type: 'boolean', default: false });
      expect(fields.screenshot_full_page).toMatchObject({ type: 'boolean', default: false });
      for (const field of ['js_rendering', 'mode', 'wait_for', 'screenshot', 'screenshot_full_page'])
        expect(fields[field].description).toEqual(expect.any(String));
    }
    const success = schemas.ScrapeResult.properties;
    expect(success.data.properties.screenshot).toMatchObject({ type: 'string' });
    expect(success.data.properties.screenshot.description).toMatch(/PNG.*base64/);
    expect(success.data.required).not.toContain('screenshot');
    for (const answer of [schemas.ScrapeResult, schemas.ScrapeFailure]) {
      expect(answer.properties.metadata.properties.engine).toMatchObject({ enum: ['http', 'browser'] });
      expect(answer.properties.metadata.required).not.toContain('engine');
    }
  });

  test('declares the key, the headers and the error codes', () => {
    expect(document.components.securitySchemes.apiKey).toEqual({
      type: 'apiKey',
      in: 'header',
      name: 'X-API-Key',
    });
    expect(Object.keys(document.components.headers)).toEqual(
      expect.arrayContaining(['Retry-After', 'Location', 'X-Request-Id']),
    );
    const submit = document.paths['/v1/scrape/async'].post;
    expect(submit.parameters.map((p: any) => p.name)).toContain('Idempotency-Key');
    expect(submit.responses['202'].headers).toHaveProperty('Location');
    expect(submit.responses['429'].headers).toHaveProperty('Retry-After');
    expect(submit.security).toEqual([{ apiKey: [] }]);
    expect(document.components.schemas.Error.properties.code.enum).toEqual(
      expect.arrayContaining(['INVALID_REQUEST', 'JOB_NOT_FOUND', 'QUEUE_UNAVAILABLE', 'NOT_FOUND']),
    );
    expect(document.paths['/v1/jobs/{job_id}'].get.parameters.map((p: any) => p.name)).toEqual([
      'job_id',
      'wait',
    ]);
  });
});
