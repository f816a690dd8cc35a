import { z } from 'zod';
import { JOB_STATUSES } from './errors';

export const HTTP_METHODS = ['GET', 'POST', 'PUT', 'PATCH', 'DELETE', 'HEAD'] as const;
/** The longest a scrape may take; the API refuses more, and the queue's job expiry is set above it. */
export const MAX_TIMEOUT_SECONDS = 300;
export const MAX_URL_LENGTH = 8192;
export const MAX_FORWARDED_HEADERS = 100;
export const MAX_HEADER_VALUE_LENGTH = 8192;
export const MAX_REQUEST_BODY_FIELD_BYTES = 1024 * 1024;
export const DEFAULT_TIMEOUT_SECONDS = 30;
export const MAX_WEBHOOK_URL_LENGTH = 2048;
/** `wait_for` as milliseconds: at most this many (and less than the scrape's `timeout`). */
export const MAX_WAIT_FOR_MS = 60_000;
export const MAX_WAIT_FOR_SELECTOR_LENGTH = 1024;
/** The browser's viewport: a `screenshot` without `screenshot_full_page` is this size. */
export const BROWSER_VIEWPORT = { width: 1280, height: 800 } as const;
/** `?wait=` of a job poll: at most this many seconds. */
export const MAX_WAIT_SECONDS = 60;
/** Items a page of a list answers unless `limit` says otherwise, and the most it may ask for. */
export const PAGE_DEFAULT_LIMIT = 100;
export const PAGE_MAX_LIMIT = 1000;

const isHttpUrl = (value: string) => {
  const url = URL.parse(value);
  return url !== null && (url.protocol === 'http:' || url.protocol === 'https:') && url.hostname !== '';
};

const httpUrl = z
  .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
  .min(1, 'is required')
  .max(MAX_URL_LENGTH, `must be at most ${MAX_URL_LENGTH} characters`)
  .refine((value) => !value.includes('\0'), 'must not contain NUL characters')
  .refine(isHttpUrl, 'must be an absolute http:// or https:// URL')
  .meta({ description: 'The page to scrape.', format: 'uri', examples: ['https://example.com/'] });

const utf8Bytes = new TextEncoder();

const headerName = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

/** A scrape request's fields; scrapeRequest adds the rule across them. */
const scrapeFields = {
  url: httpUrl,
  method: z
    .string({ error: 'must be a string' })
    .transform((m) => m.toUpperCase())
    .pipe(z.enum(HTTP_METHODS, { error: `must be one of ${HTTP_METHODS.join(', ')}` }))
    .default('GET')
    .meta({ description: `One of ${HTTP_METHODS.join(', ')} (any case).` }),
  headers: z
    .record(
      z.string().regex(headerName, 'header names must be HTTP tokens'),
      z
        .string({ error: 'header values must be strings' })
        .max(MAX_HEADER_VALUE_LENGTH)
        .refine((v) => !/[\r\n\0]/.test(v), 'header values must not contain CR, LF or NUL'),
      { error: 'must be an object of strings' },
    )
    .refine(
      (h) => Object.keys(h).length <= MAX_FORWARDED_HEADERS,
      `must have at most ${MAX_FORWARDED_HEADERS} headers`,
    )
    .default({})
    .meta({ description: `Headers sent to the target (at most ${MAX_FORWARDED_HEADERS}).` }),
  body: z
    .string({ error: 'must be a string' })
    // TextEncoder rather than Buffer: a client may validate with this schema outside Node.
    .refine((b) => utf8Bytes.encode(b).length <= MAX_REQUEST_BODY_FIELD_BYTES, 'must be at most 1 MiB')
    .refine(
      (b) => !b.includes('\0'),
      'must not contain NUL characters (Postgres text and jsonb cannot store them)',
    )
    .optional()
    .meta({ description: 'Request body sent to the target (at most 1 MiB); not with GET or HEAD.' }),
  timeout: z
    .number({ error: 'must be a number of seconds' })
    .gt(0, 'must be greater than 0')
    .max(MAX_TIMEOUT_SECONDS, `must be at most ${MAX_TIMEOUT_SECONDS} seconds`)
    .default(DEFAULT_TIMEOUT_SECONDS)
    .meta({ description: 'Seconds for the whole scrape, redirects and body included.' }),
  follow_redirects: z.boolean({ error: 'must be true or false' }).default(true),
  format: z
    .enum(['raw', 'text', 'markdown'], { error: 'must be one of raw, text, markdown' })
    .default('raw')
    .meta({ description: 'How `data.content` is answered: the body as is, as text, or as Markdown.' }),
  mode: z
    .enum(['auto', 'http', 'browser'], { error: 'must be one of "auto", "http", "browser"' })
    .default('auto')
    .meta({
      description:
        '"http" fetches with the HTTP engine only; "browser" always renders in headless Chromium (as `js_rendering: true`); "auto" fetches with HTTP and renders in the browser only a page that looks built by script (docs/browser.md).',
    }),
  js_rendering: z
    .boolean({ error: 'must be true or false' })
    .default(false)
    .meta({ description: 'Render the page in headless Chromium; `data.content` is then the rendered DOM.' }),
  wait_for: z
    .union(
      [
        z
          .string()
          .min(1, 'must be a CSS selector or a number of milliseconds')
          .max(MAX_WAIT_FOR_SELECTOR_LENGTH, `must be at most ${MAX_WAIT_FOR_SELECTOR_LENGTH} characters`),
        z
          .int('must be a CSS selector or a whole number of milliseconds')
          .min(0, 'must be at least 0 milliseconds')
          .max(MAX_WAIT_FOR_MS, `must be at most ${MAX_WAIT_FOR_MS} milliseconds`),
      ],
      { error: 'must be a CSS selector (string) or a number of milliseconds' },
    )
    .optional()
    .meta({
      description: `With rendering: a CSS selector to wait for after load, or milliseconds (at most ${MAX_WAIT_FOR_MS}) to wait after load; inside \`timeout\`.`,
    }),
  screenshot: z
    .boolean({ error: 'must be true or false' })
    .default(false)
    .meta({
      description: `With rendering: a PNG of the viewport (${BROWSER_VIEWPORT.width}×${BROWSER_VIEWPORT.height}) in \`data.screenshot\` (base64).`,
    }),
  screenshot_full_page: z
    .boolean({ error: 'must be true or false' })
    .default(false)
    .meta({ description: 'With `screenshot`: the whole page rather than the viewport.' }),
};

/** Whether a request asks for the browser engine outright (`mode: "auto"` may still use it). */
export const rendersInBrowser = (r: { mode: string; js_rendering?: boolean }) =>
  r.mode === 'browser' || r.js_rendering === true;

/**
 * The client headers a rendered page can carry: the browser sends User-Agent and Accept-Language
 * with every request of the page, as a browser does, and Cookie as cookies of the page's host only.
 * Any other header would ride along on redirects to other origins (Chromium carries overridden
 * headers across redirects), so it is refused rather than leaked or silently dropped.
 */
export const RENDER_HEADERS = ['user-agent', 'accept-language', 'cookie'] as const;

export const headersRenderable = (headers: Record<string, string> | undefined) =>
  Object.keys(headers ?? {}).every((name) =>
    (RENDER_HEADERS as readonly string[]).includes(name.toLowerCase()),
  );

type RenderFields = {
  headers?: Record<string, string>;
  method: string;
  mode: string;
  js_rendering?: boolean;
  wait_for?: string | number;
  screenshot?: boolean;
  screenshot_full_page?: boolean;
  follow_redirects?: boolean;
  timeout: number;
};

/** The rules across the rendering fields, each with the field it names in a 400. */
const renderRules: { check: (r: RenderFields) => boolean; message: string; path: string[] }[] = [
  {
    check: (r) => !(r.mode === 'http' && r.js_rendering === true),
    message: 'js_rendering: true needs the browser: mode "http" never renders (use "browser" or "auto")',
    path: ['js_rendering'],
  },
  {
    check: (r) => r.wait_for === undefined || rendersInBrowser(r),
    message: 'needs rendering: set js_rendering: true or mode "browser"',
    path: ['wait_for'],
  },
  {
    check: (r) => r.screenshot !== true || rendersInBrowser(r),
    message: 'needs rendering: set js_rendering: true or mode "browser"',
    path: ['screenshot'],
  },
  {
    check: (r) => r.screenshot_full_page !== true || r.screenshot === true,
    message: 'needs screenshot: true',
    path: ['screenshot_full_page'],
  },
  {
    check: (r) => !rendersInBrowser(r) || r.method === 'GET',
    message: 'must be GET when the page is rendered (a browser navigates with GET)',
    path: ['method'],
  },
  {
    check: (r) => !rendersInBrowser(r) || r.follow_redirects !== false,
    message: 'must be true when the page is rendered (a browser follows redirects)',
    path: ['follow_redirects'],
  },
  {
    check: (r) => !rendersInBrowser(r) || headersRenderable(r.headers),
    message: `only ${RENDER_HEADERS.join(', ')} can be sent when the page is rendered (other headers would follow redirects to other origins)`,
    path: ['headers'],
  },
  {
    check: (r) => typeof r.wait_for !== 'number' || r.wait_for < r.timeout * 1000,
    message: 'must be less than timeout (both count inside it)',
    path: ['wait_for'],
  },
];

function checkRenderRules(
  r: RenderFields,
  ctx: { addIssue: (issue: { code: 'custom'; message: string; path: string[] }) => void },
): void {
  for (const rule of renderRules)
    if (!rule.check(r)) ctx.addIssue({ code: 'custom', message: rule.message, path: rule.path });
}

const bodyNotWithGet = {
  check: (b: { body?: string; method: string }) =>
    b.body === undefined || (b.method !== 'GET' && b.method !== 'HEAD'),
  params: { message: 'is not allowed with GET or HEAD', path: ['body'] },
};

/** POST /v1/scrape's body. */
export const scrapeRequest = z
  .strictObject(scrapeFields)
  .refine(bodyNotWithGet.check, bodyNotWithGet.params)
  .superRefine(checkRenderRules)
  .meta({ id: 'ScrapeRequest', examples: [{ url: 'https://example.com/', format: 'markdown' }] });

export const webhook = z
  .strictObject(
    {
      url: z
        .string({ error: (issue) => (issue.input === undefined ? 'is required' : 'must be a string') })
        .max(MAX_WEBHOOK_URL_LENGTH, `must be at most ${MAX_WEBHOOK_URL_LENGTH} characters`)
        .refine(isHttpUrl, 'must be an absolute http:// or https:// URL')
        .meta({ description: 'Where the finished job is POSTed.', format: 'uri' }),
      secret: z
        .string({ error: 'must be a string' })
        .min(8, 'must be 8 to 256 characters')
        .max(256, 'must be 8 to 256 characters')
        .optional()
        .meta({
          description: "Signs each delivery (HMAC-SHA256); absent, the key's webhook signing secret does.",
        }),
    },
    { error: 'must be an object { "url": …, "secret"?: … }' },
  )
  .meta({ id: 'Webhook' });

/** POST /v1/scrape/async's body: a scrape request and, optionally, a webhook for its end. */
export const asyncScrapeRequest = z
  .strictObject({ ...scrapeFields, webhook: webhook.optional() })
  .refine(bodyNotWithGet.check, bodyNotWithGet.params)
  .superRefine(checkRenderRules)
  .meta({
    id: 'AsyncScrapeRequest',
    examples: [{ url: 'https://example.com/', webhook: { url: 'https://hooks.example.com/omniscrape' } }],
  });

/**
 * POST /v1/scrape/batch's body. Validated item by item (http/batch-schema.ts) so a refusal names
 * each bad item; the top-level webhook applies to the items without their own.
 */
export const batchRequest = z
  .strictObject({
    requests: z.array(asyncScrapeRequest).min(1).meta({ description: 'At most OMNISCRAPE_MAX_BATCH items.' }),
    webhook: webhook.optional(),
  })
  .meta({
    id: 'BatchRequest',
    examples: [{ requests: [{ url: 'https://example.com/a' }, { url: 'https://example.com/b' }] }],
  });

/** `limit` of a paged list: a whole number from 1 to PAGE_MAX_LIMIT. */
export const pageLimit = z
  .string()
  .regex(/^\d{1,7}$/, `must be a whole number from 1 to ${PAGE_MAX_LIMIT}`)
  .transform(Number)
  .pipe(z.number().min(1, 'must be at least 1').max(PAGE_MAX_LIMIT, `must be at most ${PAGE_MAX_LIMIT}`))
  .default(PAGE_DEFAULT_LIMIT)
  .meta({ description: `Items per page, 1 to ${PAGE_MAX_LIMIT} (default ${PAGE_DEFAULT_LIMIT}).` });

/** ISO-8601 with a date and, if a time is given, its offset (Z or ±hh:mm): never the server's zone. */
const timestamp = z
  .string()
  .regex(
    /^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2}))?$/,
    'must be an ISO-8601 timestamp, e.g. 2026-11-30T08:00:00Z',
  )
  .transform((text, ctx) => {
    const date = new Date(text);
    if (Number.isNaN(date.getTime())) {
      ctx.addIssue({ code: 'custom', message: 'is not a valid date' });
      return z.NEVER;
    }
    return date;
  });

/** The query of GET /v1/jobs; the cursor is decoded by the server (http/job-list-query.ts). */
export const jobListQuery = z
  .object({
    status: z
      .string()
      .transform((text) => text.split(','))
      .pipe(
        z.array(
          z.enum(JOB_STATUSES, {
            message: `must be one or more of ${JOB_STATUSES.join(', ')}, comma-separated`,
          }),
        ),
      )
      .optional()
      .meta({ description: `One or more of ${JOB_STATUSES.join(', ')}, comma-separated.` }),
    since: timestamp.optional().meta({ description: 'Jobs created at or after (ISO 8601 with offset).' }),
    until: timestamp.optional().meta({ description: 'Jobs created before (ISO 8601 with offset).' }),
    cursor: z.string().optional().meta({ description: '`next_cursor` of the page before.' }),
    limit: pageLimit,
  })
  .strict();

/** The query of GET /v1/batches/{id}: a page of its jobs; the cursor is decoded by the server. */
export const batchPageQuery = z
  .object({
    limit: pageLimit,
    cursor: z.string().optional().meta({ description: '`data.next_cursor` of the page before.' }),
  })
  .strict();

/** The query of GET /v1/jobs/{id}; parsed by http/poll-wait.ts, whose message names `wait`. */
export const jobPollQuery = z.object({
  wait: z
    .string()
    .regex(/^\d+(\.\d+)?$/)
    .optional()
    .meta({
      description: `Seconds (0 < wait ≤ ${MAX_WAIT_SECONDS}) to hold the answer until the job ends.`,
      examples: ['30'],
    }),
});

/** `limit` as a client sends it (the document's form of pageLimit). */
const pageLimitParameter = z
  .int()
  .min(1)
  .max(PAGE_MAX_LIMIT)
  .default(PAGE_DEFAULT_LIMIT)
  .meta({ description: `Items per page, 1 to ${PAGE_MAX_LIMIT} (default ${PAGE_DEFAULT_LIMIT}).` });

/** A timestamp as a client sends it; the server also takes a date alone (midnight UTC). */
const timestampParameter = z.string().meta({ format: 'date-time' });

/**
 * GET /v1/jobs's query as the document publishes it: `status` a list, written comma-separated
 * (`style: form, explode: false`), `since`/`until` date-times, `limit` an integer.
 */
export const jobListParameters = z.strictObject({
  status: z
    .array(z.enum(JOB_STATUSES))
    .min(1)
    .optional()
    .meta({ description: 'Only jobs in these statuses, e.g. `status=failed,timed_out`.' }),
  since: timestampParameter
    .optional()
    .meta({ description: 'Jobs created at or after (ISO 8601 with an offset, or a date alone).' }),
  until: timestampParameter
    .optional()
    .meta({ description: 'Jobs created before (ISO 8601 with an offset, or a date alone).' }),
  cursor: z.string().optional().meta({ description: '`next_cursor` of the page before.' }),
  limit: pageLimitParameter,
});

/** GET /v1/batches/{id}'s query as the document publishes it. */
export const batchPageParameters = z.strictObject({
  limit: pageLimitParameter,
  cursor: z.string().optional().meta({ description: '`data.next_cursor` of the page before.' }),
});

/** GET /v1/jobs/{id}'s query as the document publishes it: `wait` is a number of seconds. */
export const jobPollParameters = z.strictObject({
  wait: z
    .number()
    .gt(0)
    .max(MAX_WAIT_SECONDS)
    .optional()
    .meta({
      description: `Seconds (0 < wait ≤ ${MAX_WAIT_SECONDS}, decimals allowed) to hold the answer until the job ends.`,
      examples: [30],
    }),
});

/** The ranges the dashboard offers by name, back from now. */
export const DASHBOARD_RANGE_NAMES = ['1h', '6h', '24h', '7d'] as const;

const instant = z.iso
  .datetime({ offset: true })
  .transform((text) => new Date(text))
  .meta({ description: 'ISO 8601 with an offset; with the other end, at most 7 days apart.' });

/** The query of GET /dashboard and /dashboard/data: a named range, or `from` and `to`. */
export const dashboardRangeQuery = z
  .strictObject({
    range: z
      .enum(DASHBOARD_RANGE_NAMES)
      .optional()
      .meta({ description: 'A range back from now (default 1h).' }),
    from: instant.optional(),
    to: instant.optional(),
  })
  .refine((q) => q.range === undefined || (q.from === undefined && q.to === undefined), {
    message: 'give either range or from and to, not both',
  })
  .refine((q) => (q.from === undefined) === (q.to === undefined), {
    message: 'from and to go together',
  });
