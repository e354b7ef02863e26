/**
 * Runs async sections one at a time per key (a volume id), in call order.
 * Open, detach, resize and delete of one volume must not interleave: a
 * client connecting while the volume is being detached would otherwise
 * reopen a store that is being closed.
 */
export class KeyedMutex {
  readonly #tails = new Map<string, Promise<unknown>>();

  async run<T>(key: string, section: () => Promise<T>): Promise<T> {
    const previous = this.#tails.get(key) ?? Promise.resolve();
    const current = previous.then(section);
    const tail = current.then(
      () => undefined,
      () => undefined,
    );
    this.#tails.set(key, tail);
    try {
      return await current;
    } finally {
      // Forget the key once nobody queued behind us, so the map stays bounded by live work.
      if (this.#tails.get(key) === tail) this.#tails.delete(key);
    }
  }
}
