import type { z } from 'zod';
import type { ErrorCode } from './errors';

/** Response headers the document declares once (components.headers) and routes name. */
export type ResponseHeader = 'Retry-After' | 'Location' | 'Idempotent-Replayed' | 'Set-Cookie';

export interface SuccessSpec {
  description: string;
  /** The JSON body; absent for HTML, SSE and files (`contentType` says which). */
  schema?: z.ZodType;
  contentType?: string;
  headers?: ResponseHeader[];
}

export interface RouteSpec {
  method: 'get' | 'post' | 'delete';
  /** OpenAPI form: `/v1/jobs/{job_id}`. */
  path: string;
  summary: string;
  description?: string;
  tag: 'scrape' | 'jobs' | 'batches' | 'service' | 'dashboard';
  /** `apiKey`: X-API-Key; `dashboard`: an admin key by X-API-Key or a sign-in session cookie. */
  auth: 'apiKey' | 'dashboard' | 'none';
  query?: z.ZodObject;
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
