import type { DatabaseOptions } from 'pg-boss';
import PgBossDb from 'pg-boss/dist/db.js';

/**
 * pg-boss's own database (its pool, its transactions), except that its LISTEN connection (the
 * queue notices of `useListenNotify`) goes to `listenUrl`. Behind a transaction-mode pooler a
 * LISTEN lasts one transaction, so it must reach Postgres directly (OMNISCRAPE_DIRECT_DATABASE_URL)
 * while every other statement goes through the pooler. pg-boss exports no base for this: it
 * extends pg-boss's internal class, which the exact pin of pg-boss (package.json) keeps stable.
 */
export class PgBossDbListeningElsewhere extends PgBossDb {
  readonly #listener: PgBossDb;

  constructor(options: DatabaseOptions, listenUrl: string) {
    super(options);
    // Its pool stays empty: only listen() is used, and that opens a client of its own.
    this.#listener = new PgBossDb({ ...options, connectionString: listenUrl, max: 1 });
    this.#listener.on('error', (err) => this.emit('error', err));
  }

  override async open(): Promise<void> {
    await super.open();
    await this.#listener.open();
  }

  override async close(): Promise<void> {
    await this.#listener.close();
    await super.close();
  }

  override listen(
    channel: string,
    onNotification: (payload: string) => void,
    onReconnect: () => void,
  ): ReturnType<PgBossDb['listen']> {
    return this.#listener.listen(channel, onNotification, onReconnect);
  }
}
