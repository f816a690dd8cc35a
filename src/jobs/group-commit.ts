interface Waiting<In, Out> {
  item: In;
  resolve(out: Out): void;
  reject(err: unknown): void;
}

/**
 * Group commit: many callers' writes share one transaction. While one batch is being written, the
 * items that arrive wait and go together in the next one, so under load one commit (one WAL flush)
 * serves many callers, and a lone item is written at once with no added delay. Each caller's
 * promise settles only after its own batch has committed (or failed: then nothing of it was
 * written, and every item of that batch is rejected with the error).
 *
 * `write` gets the batch and returns one answer per item, in order. When `retryAlone(err)` says a
 * batch failed because of what one of its items holds (rather than, say, Postgres being away), each
 * item is written again on its own, so one bad item fails alone and does not take its batch with it.
 */
export class GroupCommit<In, Out = void> {
  #waiting: Waiting<In, Out>[] = [];
  #writing: Promise<void> | undefined;

  constructor(
    private readonly write: (items: In[]) => Promise<Out[]>,
    private readonly maxBatch: number,
    private readonly retryAlone: (err: unknown) => boolean = () => false,
  ) {}

  add(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      if (!this.#writing) this.#writing = this.#drain();
    });
  }

  async #drain(): Promise<void> {
    try {
      while (this.#waiting.length > 0) {
        const batch = this.#waiting.splice(0, this.maxBatch);
        try {
          const answers = await this.write(batch.map((w) => w.item));
          batch.forEach((w, i) => w.resolve(answers[i] as Out));
        } catch (err) {
          if (batch.length > 1 && this.retryAlone(err)) await this.#writeEachAlone(batch);
          else for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.#writing = undefined;
    }
  }

  async #writeEachAlone(batch: Waiting<In, Out>[]): Promise<void> {
    for (const w of batch) {
      try {
        const [answer] = await this.write([w.item]);
        w.resolve(answer as Out);
      } catch (err) {
        w.reject(err);
      }
    }
  }
}
