import net from 'node:net';
import { causes } from '../domain-errors';
import { StartupFailure } from '../startup-failure';

/**
 * Turns what can go wrong while a command starts (a port taken, Postgres refusing or out of
 * reach) into one line that names the cause and the way out. The causes are in the machine or the
 * settings, not in the code, so a stack trace would only hide the line that matters.
 */
export function explainStartupError(
  err: unknown,
  context: {
    databaseUrl?: string;
    port?: number;
    /** The variable the port came from (default PORT), named in the way out. */
    portSetting?: string;
    /** The variable the database URL came from (default DATABASE_URL), named in the way out. */
    setting?: string;
  } = {},
): StartupFailure | undefined {
  if (err instanceof StartupFailure) return err;
  const where = describeServer(context.databaseUrl);
  const setting = context.setting ?? 'DATABASE_URL';
  for (const e of causes(err)) {
    const { code } = e;
    const message = String(e.message);
    if (e.syscall === 'listen' && code === 'EADDRINUSE') {
      const port = typeof e.port === 'number' ? e.port : context.port;
      const address = typeof e.address === 'string' ? e.address : 'this machine';
      return new StartupFailure(
        `port ${port} is already in use on ${address}: set ${context.portSetting ?? 'PORT'} to a free port, or stop what listens there`,
        'PORT_IN_USE',
        { cause: err },
      );
    }
    if (e.syscall === 'listen' && (code === 'EACCES' || code === 'EADDRNOTAVAIL')) {
      return new StartupFailure(
        `cannot listen on ${String(e.address)}:${String(e.port)} (${code}): set HOST and PORT to an address and port this user may use`,
        'OTHER',
        { cause: err },
      );
    }
    if (code === '28P01')
      return new StartupFailure(
        `Postgres at ${where} refused the password: ${message} (check ${setting})`,
        'PASSWORD_REFUSED',
        { cause: err },
      );
    if (code === '28000')
      return new StartupFailure(
        `Postgres at ${where} refused the login: ${message} (check ${setting}, or the server's pg_hba.conf)`,
        'OTHER',
        { cause: err },
      );
    if (code === '3D000')
      return new StartupFailure(`Postgres at ${where}: ${message} (create it, or fix ${setting})`, 'OTHER', {
        cause: err,
      });
    if (code === 'ECONNREFUSED')
      return new StartupFailure(
        `cannot reach Postgres at ${where}: connection refused (is it running? check ${setting})`,
        'OTHER',
        { cause: err },
      );
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN')
      return new StartupFailure(
        `cannot reach Postgres at ${where}: the host name does not resolve (check ${setting})`,
        'OTHER',
        { cause: err },
      );
    if (
      code === 'ETIMEDOUT' ||
      code === 'EHOSTUNREACH' ||
      /timeout exceeded when trying to connect/i.test(message)
    ) {
      return new StartupFailure(
        `cannot reach Postgres at ${where}: it did not answer (check ${setting}, and that nothing blocks the way)`,
        'OTHER',
        { cause: err },
      );
    }
    if (typeof code === 'string' && /^(53|57P03)/.test(code))
      return new StartupFailure(`Postgres at ${where} cannot take this connection now: ${message}`, 'OTHER', {
        cause: err,
      });
  }
  return undefined;
}

/** host:port/database of a DATABASE_URL, never its password. */
export function describeServer(databaseUrl: string | undefined): string {
  if (!databaseUrl) return 'DATABASE_URL';
  try {
    const url = new URL(databaseUrl);
    return `${url.hostname}:${url.port || 5432}${url.pathname}`;
  } catch {
    return 'DATABASE_URL'; // unparsable: name the setting rather than echo a value that may hold a password
  }
}

/**
 * Fails early, explained, when the API's address (or the metrics port's: `portSetting`) cannot be
 * listened on (a port taken), before anything else starts: startService would find out too, but
 * only after the embedded Postgres, the migrations and pg-boss had started.
 */
export async function assertCanListen(host: string, port: number, portSetting = 'PORT'): Promise<void> {
  if (port === 0) return;
  await new Promise<void>((resolve, reject) => {
    const probe = net.createServer();
    probe.once('error', (err) => reject(explainStartupError(err, { port, portSetting }) ?? err));
    probe.listen({ host, port, exclusive: true }, () => probe.close(() => resolve()));
  });
}
