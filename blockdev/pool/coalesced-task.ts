/**
 * Runs an async task with at most one execution in flight. A caller that
 * arrives while a run is in flight cannot be covered by it (the run may have
 * started before the caller's writes completed), so it waits for the NEXT
 * run, which starts as soon as the current one settles; every caller that
 * arrives meanwhile piggy-backs on that same next run.
 *
 * Used for fdatasync per disk and for the pool-wide flush: N concurrent
 * flushes cost at most two syncs instead of N.
 */
export class CoalescedTask {
  readonly #task: () => Promise<void>;
  #running: Promise<void> | null = null;
  #queued: Promise<void> | null = null;

  constructor(task: () => Promise<void>) {
    this.#task = task;
  }

  /** Resolves after a run that started after this call has completed. */
  run(): Promise<void> {
    if (this.#queued !== null) {
      return this.#queued;
    }
    const running = this.#running;
    if (running === null) {
      return this.#start();
    }
    // Chain on the settled current run; its outcome belongs to its own callers.
    const queued = running.then(
      () => this.#startQueued(),
      () => this.#startQueued(),
    );
    this.#queued = queued;
    return queued;
  }

  /** True while a run is in flight or queued. */
  get busy(): boolean {
    return this.#running !== null || this.#queued !== null;
  }

  #startQueued(): Promise<void> {
    this.#queued = null;
    return this.#start();
  }

  #start(): Promise<void> {
    const run = this.#task().finally(() => {
      if (this.#running === run) {
        this.#running = null;
      }
    });
    this.#running = run;
    return run;
  }
}
