import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { ensureServerUser } from '../../src/postgres-server/placement';
import { freePort } from './free-port';
import { waitFor } from './wait';

/** Where Debian's package puts it (scripts/pgbouncer.sh installs it). */
const PGBOUNCER_BIN = '/usr/sbin/pgbouncer';

/**
 * Debian's PgBouncer (1.18 on bookworm), started in front of a Postgres on a free 127.0.0.1 port,
 * in transaction mode unless `settings` says otherwise: every database of the server is reachable
 * through it under its own name, as the server's user with the server's password.
 */
export interface PgBouncer {
  port: number;
  /** `serverUrl` (or another URL of the same server) through PgBouncer: same user, password, database. */
  url(serverUrl: string): string;
  /** Its admin console (database `pgbouncer`) as the server's user, an admin_users entry. */
  adminUrl: string;
  /** What PgBouncer logged so far. */
  log(): string;
  stop(): Promise<void>;
}

export interface PgBouncerOptions {
  /** Server connections per database and user (default_pool_size). */
  poolSize?: number;
  /** More pgbouncer.ini settings, or ones to override (pool_mode). */
  settings?: Record<string, string>;
}

const INSTALL_HINT = 'install it with `sh scripts/pgbouncer.sh` (as root; Debian package pgbouncer)';

/**
 * Starts PgBouncer before `serverUrl`'s Postgres. Clients log in with SCRAM against the user's
 * SCRAM secret, copied from pg_authid into the auth_file (so `serverUrl` must be a superuser's),
 * and PgBouncer logs in to Postgres with the keys the client's own SCRAM exchange proved: the
 * setup docs/production-postgres.md prints. PgBouncer refuses to run as root: as root it runs as `postgres`, who
 * owns its folder.
 */
export async function startPgBouncer(serverUrl: string, options: PgBouncerOptions = {}): Promise<PgBouncer> {
  if (!fs.existsSync(PGBOUNCER_BIN)) throw new Error(`PgBouncer is not installed: ${INSTALL_HINT}`);
  const server = new URL(serverUrl);
  const user = decodeURIComponent(server.username);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-pgbouncer-'));
  const runAs = process.getuid?.() === 0 ? ensureServerUser(() => undefined) : undefined;
  let child: ChildProcess | undefined;
  const lines: string[] = [];
  try {
    const port = await freePort();
    const ini = path.join(dir, 'pgbouncer.ini');
    const userlist = path.join(dir, 'userlist.txt');
    fs.writeFileSync(userlist, `"${user}" "${await scramSecret(serverUrl, user)}"\n`, { mode: 0o600 });
    fs.writeFileSync(
      ini,
      iniText({
        databases: { '*': `host=${server.hostname} port=${server.port}` },
        pgbouncer: {
          listen_addr: '127.0.0.1',
          listen_port: String(port),
          unix_socket_dir: '',
          auth_type: 'scram-sha-256',
          auth_file: userlist,
          admin_users: user,
          pool_mode: 'transaction',
          default_pool_size: String(options.poolSize ?? 20),
          max_client_conn: '1000',
          pidfile: path.join(dir, 'pgbouncer.pid'),
          ...options.settings,
        },
      }),
    );
    if (runAs) for (const file of [dir, ini, userlist]) fs.chownSync(file, runAs.uid, runAs.gid);
    child = spawn(PGBOUNCER_BIN, [ini], {
      ...(runAs ? { uid: runAs.uid, gid: runAs.gid } : {}),
      cwd: dir,
      env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: dir },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout!.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    child.stderr!.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    const exited = new Promise<void>((resolve) => child!.once('close', () => resolve()));
    let hasExited = false;
    void exited.then(() => (hasExited = true));
    // A test run that ends without stop() (a crash, a timeout) must not leave PgBouncer running.
    const running = child;
    const stopAtExit = () => running.kill('SIGKILL');
    process.once('exit', stopAtExit);
    void exited.then(() => process.off('exit', stopAtExit));
    const throughPgBouncer = (url: string) => {
      const next = new URL(url);
      next.hostname = '127.0.0.1';
      next.port = String(port);
      return next.toString();
    };
    const adminUrl = Object.assign(new URL(throughPgBouncer(serverUrl)), {
      pathname: '/pgbouncer',
    }).toString();
    await waitFor(
      async () => {
        if (hasExited) throw new Error(`PgBouncer exited while starting: ${lines.join('').slice(-2000)}`);
        return answers(adminUrl);
      },
      { what: () => `PgBouncer to answer; its log: ${lines.join('').slice(-2000)}`, intervalMs: 50 },
    );
    return {
      port,
      url: throughPgBouncer,
      adminUrl,
      log: () => lines.join(''),
      async stop() {
        running.kill('SIGTERM'); // immediate shutdown: clients are dropped
        await exited;
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    child?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/** The user's SCRAM secret (`SCRAM-SHA-256$…`), what the auth_file holds for it. */
async function scramSecret(serverUrl: string, user: string): Promise<string> {
  const client = new pg.Client({ connectionString: serverUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ secret: string | null }>(
      'select rolpassword as secret from pg_authid where rolname = $1',
      [user],
    );
    const secret = rows[0]?.secret;
    if (!secret?.startsWith('SCRAM-SHA-256$')) throw new Error(`the role ${user} has no SCRAM password`);
    return secret;
  } finally {
    await client.end();
  }
}

function iniText(sections: Record<string, Record<string, string>>): string {
  return Object.entries(sections)
    .map(([name, entries]) =>
      [`[${name}]`, ...Object.entries(entries).map(([key, value]) => `${key} = ${value}`)].join('\n'),
    )
    .join('\n\n')
    .concat('\n');
}

/** Whether PgBouncer answers on its admin console (a user it does not admit is answered too). */
async function answers(adminUrl: string): Promise<boolean> {
  const client = new pg.Client({ connectionString: adminUrl, connectionTimeoutMillis: 2_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    await client.query('SHOW VERSION');
    return true;
  } catch (err) {
    return (err as Error).message === 'not allowed';
  } finally {
    await client.end().catch(() => undefined);
  }
}
