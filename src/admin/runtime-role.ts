import { sql } from 'kysely';
import pg from 'pg';
import { REPORTING_SCHEMA } from './reporting-role';
import type { Db } from '../db/schema';

/** omniscrape's own schema (migrations/0001). */
const OWN_SCHEMA = 'omniscrape';
/**
 * The migrations' bookkeeping in omniscrape's schema: the runtime reads it (is the database
 * current?) and never writes it, so it gets SELECT only.
 */
const BOOKKEEPING_TABLES = ['kysely_migration', 'kysely_migration_lock', 'deferred_steps'];
const WRITE = ['INSERT', 'UPDATE', 'DELETE'];

/** The role that owns each schema: default privileges are set for it, since it creates what comes later. */
export type SchemaOwners = Record<string, string>;

/**
 * The grants the API and the workers need, as SQL statements for `role`: USAGE on omniscrape's,
 * pg-boss's (`queueSchema`) and the reporting schemas; SELECT, INSERT, UPDATE, DELETE on their
 * tables (SELECT only on the migrations' bookkeeping and the reporting views); USAGE on their
 * sequences; EXECUTE on their functions (omniscrape.key_slots, pg-boss's create_queue, …); and the
 * same as default privileges of each schema's owner, so tables, sequences and functions a later
 * migration creates are covered without running this again. Rows only: no CREATE, no ownership.
 */
export function runtimeGrants(role: string, queueSchema: string, owners: SchemaOwners): string[] {
  const to = pg.escapeIdentifier(role);
  const defaults = (schema: string, grant: string) =>
    `alter default privileges for role ${pg.escapeIdentifier(owners[schema] ?? '')} in schema ${schema} grant ${grant} to ${to}`;
  const readWrite = (schema: string) => [
    `grant usage on schema ${schema} to ${to}`,
    `grant select, insert, update, delete on all tables in schema ${schema} to ${to}`,
    `grant usage, select on all sequences in schema ${schema} to ${to}`,
    `grant execute on all functions in schema ${schema} to ${to}`,
    defaults(schema, 'select, insert, update, delete on tables'),
    defaults(schema, 'usage, select on sequences'),
    defaults(schema, 'execute on functions'),
  ];
  return [
    ...readWrite(OWN_SCHEMA),
    `revoke insert, update, delete on ${BOOKKEEPING_TABLES.map((t) => `${OWN_SCHEMA}.${t}`).join(', ')} from ${to}`,
    // The dashboard reads the reporting views (through the main database when no replica is set).
    `grant usage on schema ${REPORTING_SCHEMA} to ${to}`,
    `grant select on all tables in schema ${REPORTING_SCHEMA} to ${to}`,
    defaults(REPORTING_SCHEMA, 'select on tables'),
    ...readWrite(queueSchema),
  ];
}

/** The schemas the runtime grants cover, in the order runtimeGrants names them. */
export const runtimeSchemas = (queueSchema: string) => [OWN_SCHEMA, REPORTING_SCHEMA, queueSchema];

/** Each runtime schema's owner; a schema not there yet (migrations not run) is left out. */
export async function schemaOwners(db: Db, queueSchema: string): Promise<SchemaOwners> {
  const { rows } = await sql<{ schema: string; owner: string }>`
    select nspname as schema, pg_get_userbyid(nspowner) as owner from pg_namespace
     where nspname = any(${runtimeSchemas(queueSchema)})`.execute(db);
  return Object.fromEntries(rows.map((r) => [r.schema, r.owner]));
}

/** Applies runtimeGrants in one transaction. */
export async function grantRuntime(db: Db, statements: string[]): Promise<void> {
  await db.transaction().execute(async (trx) => {
    for (const statement of statements) await sql.raw(statement).execute(trx);
  });
}

export interface RuntimeRoleCheck {
  /** Privileges runtimeGrants gives that the role lacks, e.g. `INSERT on omniscrape.api_keys`. */
  missing: string[];
  /** What the role may do beyond them, which a runtime role should not: DDL, ownership. */
  excess: string[];
}

/**
 * Checks `role` against runtimeGrants on the database as it is now (each existing table, sequence,
 * function and schema, and the default privileges for later ones), and what it may do beyond.
 */
export async function checkRuntimeRole(db: Db, role: string, queueSchema: string): Promise<RuntimeRoleCheck> {
  const schemas = runtimeSchemas(queueSchema);
  const missing = (
    await sql<{ missing: string }>`
      with objects as (
        select n.nspname as schema, c.relname as name, c.oid, c.relkind from pg_class c
          join pg_namespace n on n.oid = c.relnamespace
         where n.nspname = any(${schemas}) and c.relkind in ('r', 'p', 'v', 'm', 'S')),
      wanted as (
        select schema, name, relkind, p as privilege, oid from objects
         cross join lateral unnest(case
           when relkind = 'S' then array['USAGE']
           when schema = ${REPORTING_SCHEMA} or (schema = ${OWN_SCHEMA} and name = any(${BOOKKEEPING_TABLES}))
             then array['SELECT']
           else array['SELECT'] || ${WRITE}::text[] end) as p)
      select privilege || ' on ' || schema || '.' || name as missing from wanted
       where not (case when relkind = 'S' then has_sequence_privilege(${role}, oid, privilege)
                       else has_table_privilege(${role}, oid, privilege) end)
      union all
      select 'EXECUTE on ' || n.nspname || '.' || p.proname || '()' from pg_proc p
        join pg_namespace n on n.oid = p.pronamespace
       where n.nspname = any(${schemas}) and not has_function_privilege(${role}, p.oid, 'EXECUTE')
      union all
      select 'USAGE on schema ' || s from unnest(${schemas}::text[]) as s
       where to_regnamespace(s) is not null and not has_schema_privilege(${role}, s, 'USAGE')
      order by 1`.execute(db)
  ).rows.map((r) => r.missing);
  return {
    missing: [...missing, ...(await missingDefaults(db, role, queueSchema))],
    excess: await excessOf(db, role, schemas),
  };
}

/**
 * The default privileges runtimeGrants sets that the role lacks, per schema and kind of object; in
 * a schema the role owns (or as a superuser) it needs none: what it creates there is its own.
 */
async function missingDefaults(db: Db, role: string, queueSchema: string): Promise<string[]> {
  const wanted: [string, 'r' | 'S' | 'f', string[]][] = [
    [OWN_SCHEMA, 'r', ['SELECT', ...WRITE]],
    [OWN_SCHEMA, 'S', ['USAGE']],
    [OWN_SCHEMA, 'f', ['EXECUTE']],
    [REPORTING_SCHEMA, 'r', ['SELECT']],
    [queueSchema, 'r', ['SELECT', ...WRITE]],
    [queueSchema, 'S', ['USAGE']],
    [queueSchema, 'f', ['EXECUTE']],
  ];
  const { rows } = await sql<{ schema: string; kind: string; privilege: string }>`
    select n.nspname as schema, d.defaclobjtype as kind, a.privilege_type as privilege
      from pg_default_acl d join pg_namespace n on n.oid = d.defaclnamespace
     cross join lateral aclexplode(d.defaclacl) a
     where d.defaclrole = n.nspowner and a.grantee = (select oid from pg_roles where rolname = ${role})`.execute(
    db,
  );
  const { rows: foreign } = await sql<{ schema: string }>`
    select nspname as schema from pg_namespace
     where nspname = any(${runtimeSchemas(queueSchema)}) and not pg_has_role(${role}, nspowner, 'USAGE')`.execute(
    db,
  );
  const needed = new Set(foreign.map((r) => r.schema));
  const has = new Set(rows.map((r) => `${r.schema}/${r.kind}/${r.privilege}`));
  const kinds = { r: 'tables', S: 'sequences', f: 'functions' };
  return wanted.flatMap(([schema, kind, privileges]) =>
    (needed.has(schema) ? privileges : [])
      .filter((p) => !has.has(`${schema}/${kind}/${p}`))
      .map((p) => `default ${p} on later ${kinds[kind]} in schema ${schema}`),
  );
}

/**
 * DDL a runtime role should not have: superuser, CREATE on the database or on any schema (`public`
 * before Postgres 15 lets every role create there), owning one of the runtime schemas.
 */
async function excessOf(db: Db, role: string, schemas: string[]): Promise<string[]> {
  const { rows } = await sql<{ excess: string }>`
    select 'superuser' as excess from pg_roles where rolname = ${role} and rolsuper
    union all
    select 'CREATE on database ' || current_database()
     where has_database_privilege(${role}, current_database(), 'CREATE')
    union all
    select 'CREATE on schema ' || nspname from pg_namespace
     where nspname !~ '^(pg_|information_schema$)' and has_schema_privilege(${role}, oid, 'CREATE')
    union all
    select 'owns schema ' || nspname from pg_namespace
     where nspname = any(${schemas}) and pg_has_role(${role}, nspowner, 'USAGE')
    order by 1`.execute(db);
  return rows.map((r) => r.excess);
}
