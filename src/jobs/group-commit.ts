interface Waiting<In, Out> {
  item: In;
  resolve(out: Out): void;
  reject(err: unknown): void;
}

/**
 * Group commit: many callers' writes share one transaction. While one batch is being written, the
 * items that arrive wait and go together in the next one, so under load one commit (one WAL flush)
 * serves many callers, and a lone item is written at once with no added delay. Each caller's
 * promise settles only after its own batch has committed (or failed: then every item of that batch
 * is rejected with the error, and nothing of it was written).
 *
 * `write` gets the batch and returns one answer per item, in order.
 */
export class GroupCommit<In, Out = void> {
  #waiting: Waiting<In, Out>[] = [];
  #writing: Promise<void> | undefined;

  constructor(
    private readonly write: (items: In[]) => Promise<Out[]>,
    private readonly maxBatch: number,
  ) {}

  add(item: In): Promise<Out> {
    return new Promise<Out>((resolve, reject) => {
      this.#waiting.push({ item, resolve, reject });
      this.#writing ??= this.#drain();
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
          for (const w of batch) w.reject(err);
        }
      }
    } finally {
      this.#writing = undefined;
    }
  }
}
