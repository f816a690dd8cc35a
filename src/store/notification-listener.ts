import pg from 'pg';
import type { Logger } from '../logger';

export interface NotificationListener {
  stop(): Promise<void>;
}

const RECONNECT_DELAY_MS = 1_000;

/**
 * Holds one connection LISTENing on `channel` and calls `onNotify` for each notice. A lost
 * connection is reopened every second until it works; `onNotify` is also called after each
 * (re)connect, since notices sent while it was down are gone.
 */
export function listenForNotifications(
  databaseUrl: string,
  channel: string,
  onNotify: (payload: string | undefined) => void,
  logger: Logger,
): NotificationListener {
  let client: pg.Client | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;

  const connect = async () => {
    if (stopped) return;
    const next = new pg.Client({ connectionString: databaseUrl, application_name: 'omniscrape-listener', keepAlive: true });
    next.on('error', () => undefined); // 'end' follows and schedules the reconnect
    next.on('notification', (msg) => onNotify(msg.payload));
    next.on('end', () => {
      if (client === next) client = undefined;
      scheduleReconnect();
    });
    try {
      await next.connect();
      await next.query(`LISTEN ${pg.escapeIdentifier(channel)}`);
      if (stopped) return void (await next.end().catch(() => undefined));
      client = next;
      onNotify(undefined);
    } catch (err) {
      logger.debug({ err: (err as Error).message, channel }, 'LISTEN connection failed; retrying');
      await next.end().catch(() => undefined);
    }
  };
  const scheduleReconnect = () => {
    if (stopped || retryTimer) return;
    retryTimer = setTimeout(() => {
      retryTimer = undefined;
      void connect();
    }, RECONNECT_DELAY_MS);
  };

  void connect();
  return {
    async stop() {
      stopped = true;
      clearTimeout(retryTimer);
      await client?.end().catch(() => undefined);
    },
  };
}
