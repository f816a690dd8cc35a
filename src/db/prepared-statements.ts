import { CompiledQuery } from 'kysely';
import { createHash } from 'node:crypto';
import pg from 'pg';
import type { Db } from './schema';

/** Most parameters of a statement worth preparing: bulk VALUES lists vary in length, so each size would be a statement of its own. */
const MAX_PREPARED_PARAMETERS = 32;
/**
 * Most statements one connection prepares automatically; later new ones run unprepared. Some texts
 * vary (pg-boss writes a claim's batch size into its fetch), and each prepared statement holds
 * memory in its Postgres backend for as long as the connection lives. Named statements
 * (namedStatement) are a fixed few and do not count against it.
 */
export const MAX_PREPARED_PER_CONNECTION = 100;

/**
 * A statement whose result is `*` (SELECT * …, … RETURNING *): its columns change with the
 * table's, and a prepared one fails once a migration adds a column ("cached plan must not change
 * result type").
 */
const STAR_RESULT = /^\s*select\s+("?\w+"?\.)?\*|\breturning\s+("?\w+"?\.)?\*\s*;?\s*$/i;

/** The error of a prepared statement whose result a migration changed (it is prepared anew on its next run). */
export const isStalePlan = (err: unknown): boolean =>
  (err as { code?: string } | null)?.code === '0A000' &&
  /cached plan must not change result type/.test(String((err as Error).message));

/** A hot statement: its SQL text and the name it is prepared under, so it reads plainly in pg_prepared_statements and logs. */
export interface NamedStatement {
  readonly name: string;
  readonly text: string;
}

/** Registered statement texts → their names (PreparingClient prepares these under them). */
const registeredNames = new Map<string, string>();

/**
 * Registers a statement under an explicit prepared-statement name. A connection that prepares
 * statements (openStore's `prepareStatements`) always prepares it under this name, whatever its
 * number of parameters; other connections run it as it is. Each name belongs to one text, and a `*` result is refused, since a
 * migration adding a column would break the prepared statement.
 */
export function namedStatement(name: string, text: string): NamedStatement {
  if (!/^omniscrape_[a-z0-9_]+$/.test(name) || name.length > 63)
    throw new Error(`not a statement name: ${name}`);
  if (STAR_RESULT.test(text)) throw new Error(`statement ${name} returns *: name its columns`);
  const named = registeredNames.get(text);
  if (named !== undefined && named !== name) throw new Error(`statement ${name} is already named ${named}`);
  for (const [registered, existing] of registeredNames) {
    if (existing === name && registered !== text) throw new Error(`two statements named ${name}`);
  }
  registeredNames.set(text, name);
  return { name, text };
}

/** Runs a named statement (in `db`'s transaction, when it is one) and returns its rows. */
export async function runStatement<Row>(
  db: Db,
  statement: NamedStatement,
  parameters: readonly unknown[],
): Promise<Row[]> {
  const { rows } = await db.executeQuery<Row>(CompiledQuery.raw(statement.text, [...parameters]));
  return rows;
}

/** pg's own Client.query, called by PreparingClient (always with `.call(this, …)`). */
// eslint-disable-next-line @typescript-eslint/unbound-method
const baseQuery = pg.Client.prototype.query as (this: pg.Client, ...args: unknown[]) => unknown;

/**
 * A pg client that runs repeated statements as named prepared statements: each connection parses
 * them once, and Postgres keeps a generic plan rather than planning each call, which the claim,
 * settle and poll statements pay for on every job (docs/performance.md). Prepared: registered
 * statements (namedStatement) under their names, and other statements with parameters (one-off
 * text has nothing to reuse), at most MAX_PREPARED_PARAMETERS of them and no `*` result, under a
 * name hashed from their text, up to MAX_PREPARED_PER_CONNECTION per connection. A statement a
 * migration made stale fails once and is prepared anew under a new name. These are protocol-level
 * statements (a named Parse, then Bind by name), which PgBouncer in transaction mode carries
 * between server connections only from 1.21 on, with max_prepared_statements set; before that,
 * OMNISCRAPE_PREPARED_STATEMENTS=false leaves this class unused (test/pgbouncer.test.ts).
 */
export class PreparingClient extends pg.Client {
  static readonly #hashNames = new Map<string, string | undefined>();
  /** Statements this connection found stale (a migration changed their result): prepared anew under a new name. */
  readonly #renamed = new Map<string, number>();
  /** The names this connection has prepared (or is preparing) automatically. */
  readonly #prepared = new Set<string>();

  // pg's query() has a dozen overloads (text or config, values, callback or promise); this override
  // takes them all and returns what the base returns, so its own signature is loose.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  override query(config: unknown, values?: unknown, callback?: unknown): any {
    const text = typeof config === 'string' && Array.isArray(values) ? config : undefined;
    const registered = text === undefined ? undefined : registeredNames.get(text);
    const base =
      registered ??
      (text === undefined ? undefined : PreparingClient.#hashNameOf(text, (values as unknown[]).length));
    if (text === undefined || base === undefined) return baseQuery.call(this, config, values, callback);
    const generation = this.#renamed.get(text) ?? 0;
    const name = generation ? `${base}_${generation}` : base;
    if (registered === undefined && !this.#prepared.has(name)) {
      if (this.#prepared.size >= MAX_PREPARED_PER_CONNECTION)
        return baseQuery.call(this, config, values, callback);
      this.#prepared.add(name);
    }
    const noteStale = (err: unknown) => {
      if (isStalePlan(err)) this.#renamed.set(text, generation + 1);
    };
    if (typeof callback === 'function') {
      return baseQuery.call(this, { name, text, values }, (err: Error | null, result: unknown) => {
        if (err) noteStale(err);
        (callback as (err: Error | null, result: unknown) => void)(err, result);
      });
    }
    return (baseQuery.call(this, { name, text, values }) as Promise<unknown>).catch((err: unknown) => {
      noteStale(err);
      throw err;
    });
  }

  /**
   * The hashed name of an unregistered text worth preparing, or undefined; hashed once per text
   * (the pg-boss fetch is ~3 KB).
   */
  static #hashNameOf(text: string, parameterCount: number): string | undefined {
    if (parameterCount === 0 || parameterCount > MAX_PREPARED_PARAMETERS) return undefined;
    if (this.#hashNames.has(text)) return this.#hashNames.get(text);
    if (this.#hashNames.size >= 10_000) this.#hashNames.clear();
    const name = STAR_RESULT.test(text)
      ? undefined
      : `omniscrape_${createHash('sha1').update(text).digest('hex').slice(0, 32)}`;
    this.#hashNames.set(text, name);
    return name;
  }
}
