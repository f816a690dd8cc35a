import { z } from 'zod';
import { ERROR_MEANINGS, errorBody, type ErrorCode } from './errors';
import { jobAnswer } from './responses';
import { PUBLIC_ROUTES, type ResponseHeader, type RouteSpec, type RouteTag } from './routes';

type Json = Record<string, unknown>;

const HEADERS: Record<ResponseHeader | 'X-Request-Id', Json> = {
  'Retry-After': {
    description: 'Seconds after which trying again can help.',
    schema: { type: 'integer', minimum: 0 },
    example: 5,
  },
  Location: { description: 'Where to poll (or go next).', schema: { type: 'string' } },
  'Idempotent-Replayed': {
    description: 'The answer of an earlier request with this Idempotency-Key.',
    schema: { const: 'true' },
  },
  'Set-Cookie': {
    description: 'The dashboard session cookie (HttpOnly, SameSite=Strict).',
    schema: { type: 'string' },
  },
  'X-Request-Id': {
    description: 'The id of this request in the logs: a valid incoming X-Request-Id echoed, else a new one.',
    schema: { type: 'string' },
  },
};

/** The document's groups of operations, in order. */
const TAGS: Record<Exclude<RouteTag, 'pages'>, string> = {
  scrape: 'Scrape a page now and wait for it.',
  jobs: 'Queue a scrape as a job, then get it, wait for it, follow its events, list or cancel jobs.',
  batches: 'Queue many jobs at once, then follow or cancel them together.',
  webhooks: "A job's end POSTed to a URL: the deliveries made, and a redelivery on demand.",
  operations: 'Health and readiness probes, Prometheus metrics and this document; no key.',
};

/**
 * Node's HTTP server refuses a request whose headers pass its limit (16 KiB) before any route
 * sees it, so every operation can answer this. It is named only where a route has no 4XX answer
 * of its own (linters ask for one): a generator types an operation's errors as the union of its
 * error bodies, and one without a body would make that `unknown`.
 */
const HEADERS_TOO_LARGE: Json = {
  description:
    "The request's headers are over the server's limit (16 KiB): refused before the request is read, without a body.",
};

/** Codes whose answers carry Retry-After. */
export const RETRY_CODES: readonly ErrorCode[] = [
  'CONCURRENCY_LIMIT',
  'TOO_MANY_QUEUED_JOBS',
  'QUEUE_UNAVAILABLE',
  'NOT_READY',
  'TOO_MANY_STREAMS',
  'TOO_MANY_REDELIVERIES',
  'TOO_MANY_FAILED_SIGN_INS',
  'TOO_MANY_REQUEST_BYTES',
];

/** Every schema with a `meta({ id })`, as JSON Schema 2020-12 (OpenAPI 3.1's dialect), refs between them. */
function componentSchemas(): Record<string, Json> {
  const { schemas } = z.toJSONSchema(z.globalRegistry, {
    io: 'input',
    target: 'draft-2020-12',
    unrepresentable: 'any',
    uri: (id) => `#/components/schemas/${id}`,
  });
  const components = Object.fromEntries(
    Object.entries(schemas).map(([id, schema]) => [id, stripDialect(schema as Json)]),
  );
  // zod drops an object's examples when one of its fields transforms its input: put them back.
  for (const route of PUBLIC_ROUTES) {
    const meta = route.body && z.globalRegistry.get(route.body);
    const component = meta?.id ? components[meta.id] : undefined;
    if (component && meta?.examples && !component.examples) component.examples = meta.examples;
  }
  return components;
}

/** A component as OpenAPI holds it: the document names the dialect once, and its place is its id. */
const stripDialect = ({ $schema: _dialect, $id: _id, ...rest }: Json): Json => rest;

/** A schema inline (a query parameter), or a ref when it has a component id. */
function schemaOf(schema: z.ZodType): Json {
  const id = z.globalRegistry.get(schema)?.id;
  if (id) return { $ref: `#/components/schemas/${id}` };
  return stripDialect(
    z.toJSONSchema(schema, {
      io: 'input',
      target: 'draft-2020-12',
      unrepresentable: 'any',
    }),
  );
}

const headerRefs = (names: readonly string[]) =>
  Object.fromEntries(
    [...names, 'X-Request-Id'].map((name) => [name, { $ref: `#/components/headers/${name}` }]),
  );

function parameters(route: RouteSpec): Json[] {
  const found: Json[] = [...route.path.matchAll(/\{(\w+)\}/g)].map(([, name = '']) => ({
    name,
    in: 'path',
    required: true,
    schema: { type: 'string', ...(name.endsWith('_id') ? { format: 'uuid' } : {}) },
  }));
  const query = route.queryParameters ?? route.query;
  if (query) {
    const properties = (schemaOf(query).properties ?? {}) as Record<string, Json>;
    for (const [name, schema] of Object.entries(properties)) {
      const { description, ...rest } = schema;
      found.push({
        name,
        in: 'query',
        required: false,
        // A list in a query is written comma-separated: `status=failed,timed_out`.
        ...(rest.type === 'array' ? { style: 'form', explode: false } : {}),
        schema: rest,
        ...(description ? { description } : {}),
      });
    }
  }
  if (route.idempotencyKey)
    found.push({
      name: 'Idempotency-Key',
      in: 'header',
      required: false,
      description:
        'Retrying with the same key within 24 hours answers the first result (200) instead of queuing again.',
      schema: { type: 'string', minLength: 1, maxLength: 255, pattern: '^[\\x21-\\x7e]+$' },
      example: '6f1c1a3e-2b7d-4c59-9f0e-8d3a7b2c1e45',
    });
  if (route.lastEventId)
    found.push({
      name: 'Last-Event-ID',
      in: 'header',
      required: false,
      description: 'The id of the last event received: resume after it.',
      schema: { type: 'string' },
    });
  return found;
}

function responses(route: RouteSpec): Json {
  const answers: Json = {};
  for (const [status, spec] of Object.entries(route.responses)) {
    const content = spec.schema
      ? { 'application/json': { schema: schemaOf(spec.schema) } }
      : spec.events
        ? // OpenAPI 3.1 has no schema for one event of a stream (3.2's itemSchema): as generators read
          // it, the schema is each event's `data`, and the answer's description says so.
          { 'text/event-stream': { schema: schemaOf(spec.events) } }
        : spec.contentType
          ? { [spec.contentType]: {} }
          : undefined;
    answers[status] = {
      description: spec.description,
      headers: headerRefs(spec.headers ?? []),
      ...(content ? { content } : {}),
    };
  }
  for (const [status, codes = []] of Object.entries(route.errors)) {
    const examples = Object.fromEntries(
      codes.map((code) => [
        code,
        { summary: ERROR_MEANINGS[code], value: { success: false, error: ERROR_MEANINGS[code], code } },
      ]),
    );
    answers[status] = {
      description: codes.map((code) => `\`${code}\`: ${ERROR_MEANINGS[code]}`).join('\n\n'),
      headers: headerRefs(codes.some((code) => RETRY_CODES.includes(code)) ? ['Retry-After'] : []),
      content: { 'application/json': { schema: schemaOf(errorBody), examples } },
    };
  }
  if (!Object.keys(answers).some((status) => status.startsWith('4')))
    answers['431'] = { $ref: '#/components/responses/RequestHeadersTooLarge' };
  return answers;
}

function operation(route: RouteSpec): Json {
  const security = route.auth === 'apiKey' ? [{ apiKey: [] }] : [];
  const body = route.body
    ? { requestBody: { required: true, content: { 'application/json': { schema: schemaOf(route.body) } } } }
    : route.formBody
      ? {
          requestBody: {
            required: true,
            content: {
              'application/x-www-form-urlencoded': {
                schema: { type: 'object', properties: { key: { type: 'string' } }, required: ['key'] },
              },
            },
          },
        }
      : {};
  return {
    operationId: route.operationId,
    summary: route.summary,
    description: route.description,
    tags: [route.tag],
    security,
    parameters: parameters(route),
    ...body,
    responses: responses(route),
  };
}

/** What a job's webhook receives when the job ends: the poll's answer, signed. */
function jobEndedWebhook(): Json {
  return {
    post: {
      operationId: 'jobEnded',
      tags: ['webhooks'],
      summary: 'A job ended (POSTed to its webhook URL)',
      description:
        'Sent once a job is completed, failed, timed out or cancelled; retried with backoff until the receiver answers 2xx. Verify `X-Omniscrape-Signature` = `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>" with the secret>` (one `v1=` per signing secret: two while a key\'s rotated secret overlaps its successor), or the Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<base64>`) with a standardwebhooks library.',
      parameters: [
        {
          name: 'X-Omniscrape-Job-Id',
          in: 'header',
          required: true,
          schema: { type: 'string', format: 'uuid' },
        },
        { name: 'X-Omniscrape-Signature', in: 'header', required: true, schema: { type: 'string' } },
        {
          name: 'webhook-id',
          in: 'header',
          required: true,
          description: "`msg_<job id>`: the same for every attempt and redelivery of the job's end.",
          schema: { type: 'string' },
        },
        { name: 'webhook-timestamp', in: 'header', required: true, schema: { type: 'string' } },
        {
          name: 'webhook-signature',
          in: 'header',
          required: true,
          description:
            'Standard Webhooks: `v1,<base64 HMAC-SHA256 of "<id>.<timestamp>.<body>">`, space-separated.',
          schema: { type: 'string' },
        },
      ],
      // The receiver checks the signature headers rather than a key of ours.
      security: [],
      requestBody: { required: true, content: { 'application/json': { schema: schemaOf(jobAnswer) } } },
      responses: {
        '2XX': { description: 'Delivered.' },
        '4XX': { description: 'Not delivered: retried with backoff, as is any answer other than 2XX.' },
      },
    },
  };
}

/** The headers the published routes name, and X-Request-Id which every answer carries. */
function usedHeaders(): Json {
  const used = new Set<string>(['X-Request-Id', 'Retry-After']);
  for (const route of PUBLIC_ROUTES)
    for (const spec of Object.values(route.responses)) for (const name of spec.headers ?? []) used.add(name);
  return Object.fromEntries(Object.entries(HEADERS).filter(([name]) => used.has(name)));
}

/** The OpenAPI 3.1 document of the public API, generated from the contract's schemas and route table. */
export function openApiDocument(version: string): Json {
  const paths: Record<string, Json> = {};
  for (const route of PUBLIC_ROUTES) (paths[route.path] ??= {})[route.method] = operation(route);
  return {
    openapi: '3.1.1',
    info: {
      title: 'omniscrape',
      version,
      description:
        'A self-hosted web-scraping gateway. Every error answers `{ "success": false, "error": "…", "code": "…" }`.',
      license: { name: 'MIT', identifier: 'MIT' },
    },
    jsonSchemaDialect: 'https://spec.openapis.org/oas/3.1/dialect/base',
    servers: [{ url: '/' }],
    tags: Object.entries(TAGS).map(([name, description]) => ({ name, description })),
    paths,
    webhooks: { jobEnded: jobEndedWebhook() },
    components: {
      schemas: componentSchemas(),
      headers: usedHeaders(),
      responses: { RequestHeadersTooLarge: HEADERS_TOO_LARGE },
      securitySchemes: { apiKey: { type: 'apiKey', in: 'header', name: 'X-API-Key' } },
    },
  };
}
