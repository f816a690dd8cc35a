import type { z } from 'zod';
import type { ErrorCode } from './errors';

/** Response headers the document declares once (components.headers) and routes name. */
export type ResponseHeader = 'Retry-After' | 'Location' | 'Idempotent-Replayed' | 'Set-Cookie';

/** The public document's groups (tags), by resource; `pages` are the operator's pages, left out of it. */
export type RouteTag = 'scrape' | 'jobs' | 'batches' | 'webhooks' | 'operations' | 'pages';

export interface SuccessSpec {
  description: string;
  /** The JSON body; absent for HTML, SSE and files (`contentType` says which). */
  schema?: z.ZodType;
  contentType?: string;
  /** A `text/event-stream` answer: the JSON each event's `data` holds. */
  events?: z.ZodType;
  headers?: ResponseHeader[];
}

export interface RouteSpec {
  method: 'get' | 'post' | 'delete';
  /** OpenAPI form: `/v1/jobs/{job_id}`. */
  path: string;
  /** What the operation does, as a generated client names its method (`getJob`). */
  operationId: string;
  summary: string;
  description: string;
  tag: RouteTag;
  /** `apiKey`: X-API-Key; `dashboard`: an admin key by X-API-Key or a sign-in session cookie. */
  auth: 'apiKey' | 'dashboard' | 'none';
  /** The query as the server reads it: text, parsed and checked (messages name the parameter). */
  query?: z.ZodObject;
  /**
   * The same query as the document publishes it when a parameter is not text: the typed values a
   * client sends (`limit` an integer, `status` a list), which `query` reads back from their text.
   */
  queryParameters?: z.ZodObject;
  body?: z.ZodType;
  /** A form body instead of JSON (the dashboard's sign-in). */
  formBody?: boolean;
  idempotencyKey?: boolean;
  lastEventId?: boolean;
  responses: Record<number, SuccessSpec>;
  /** The error answers `{ success: false, error, code }` this route gives, by status. */
  errors: ErrorsByStatus;
}

/** The error codes a route answers, by status. */
export type ErrorsByStatus = Partial<Record<number, ErrorCode[]>>;
