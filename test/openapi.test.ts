import fs from 'node:fs';
import path from 'node:path';
import { Validator } from '@seriousme/openapi-schema-validator';
import { z } from 'zod';
import { openApiDocument } from '../src/contract/openapi-document';
import { errorBody } from '../src/contract/errors';
import { job } from '../src/contract/responses';
import { ROUTES } from '../src/contract/routes';
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

  test('every route the app serves is in the document, with its method', () => {
    const app = createApp(service.running.context) as any;
    const routes = expressRoutes(app.router.stack);
    expect(routes.length).toBeGreaterThan(15);
    const documented = Object.entries(document.paths).flatMap(([path, ops]: [string, any]) =>
      Object.keys(ops).map((method) => ({ method, path: expressPath(path) })),
    );
    const missing = routes.flatMap(({ route, mounts }) =>
      Object.keys(route.methods)
        .filter((method) => method !== '_all')
        .filter(
          (method) =>
            !documented.some(
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
