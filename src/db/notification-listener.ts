import pg from 'pg';
import type { Logger } from '../logger';

export interface NotificationListener {
  stop(): Promise<void>;
}

const RECONNECT_DELAY_MS = 1_000;

/** Called with each notice's payload, and with undefined after each (re)connect. */
export type OnNotify = (payload: string | undefined) => void;

/** Told when the listening connection comes up and when it is lost (the metrics of its health). */
export interface ListenerObserver {
  connected(): void;
  lost(): void;
}

export interface ListenerOptions {
  /** Names the connection in pg_stat_activity. */
  applicationName?: string;
  observer?: ListenerObserver;
}

/**
 * Holds one connection LISTENing on `channel` and calls `onNotify` for each notice. A lost
 * connection is reopened every second until it works; `onNotify` is also called after each
 * (re)connect, since notices sent while it was down are gone.
 */
export function listenForNotifications(
  databaseUrl: string,
  channel: string,
  onNotify: OnNotify,
  logger: Logger,
  options: ListenerOptions = {},
): NotificationListener {
  return listenOnChannels(databaseUrl, { [channel]: onNotify }, logger, options);
}

/**
 * Like listenForNotifications, for several channels on one connection: each notice goes to its
 * channel's handler, and every handler is called after each (re)connect.
 */
export function listenOnChannels(
  databaseUrl: string,
  handlers: Record<string, OnNotify>,
  logger: Logger,
  { applicationName = 'omniscrape-listener', observer }: ListenerOptions = {},
): NotificationListener {
  const channels = Object.keys(handlers).join(', ');
  let client: pg.Client | undefined;
  let stopped = false;
  let retryTimer: NodeJS.Timeout | undefined;
  /** Set after a failed connect is logged, so an outage logs once, not every second. */
  let failing = false;

  const connect = async () => {
    if (stopped) return;
    const next = new pg.Client({
      connectionString: databaseUrl,
      application_name: applicationName,
      keepAlive: true,
    });
    next.on('error', () => undefined); // 'end' follows and schedules the reconnect
    next.on('notification', (msg) => handlers[msg.channel]?.(msg.payload));
    next.on('end', () => {
      if (client === next) {
        client = undefined;
        observer?.lost();
      }
      scheduleReconnect();
    });
    try {
      await next.connect();
      for (const name of Object.keys(handlers)) await next.query(`LISTEN ${pg.escapeIdentifier(name)}`);
      // Stopped while connecting: closed at once; an error closing it changes nothing.
      if (stopped) return void (await next.end().catch(() => undefined));
      client = next;
      observer?.connected();
      if (failing) logger.info({ channels }, 'LISTEN connection back');
      failing = false;
      for (const onNotify of Object.values(handlers)) onNotify(undefined);
    } catch (err) {
      // Not rethrown: nothing waits on this; the 'end' that follows schedules the next try.
      if (!failing)
        logger.warn(
          { err, channels },
          'LISTEN connection failed; retrying every second (logged once per outage)',
        );
      failing = true;
      // Closing a connection that just failed can fail too; the failure above is the one that matters.
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
      // An error while closing (the connection already broken) leaves nothing to clean up.
      await client?.end().catch(() => undefined);
    },
  };
}
