/**
 * What the node runner drives: the application's deterministic state machine.
 * Every node applies the same commands in the same order (Raft §5.3 "State
 * Machine Safety"), so `apply` must depend only on the state and the command.
 */
export interface AppliedCommand {
  /** Log index of the entry that carried the command (several commands may share one entry). */
  readonly index: number;
  readonly term: number;
  readonly command: Buffer;
}

export interface StateMachine<R> {
  /** Apply one committed command; the result resolves the proposer's promise on the node that proposed it. */
  apply(command: AppliedCommand): R;
  /** The whole state as one image (taken every `snapshotEveryEntries` applied entries). */
  snapshot(): Buffer;
  /** Replace the whole state with an image from snapshot() (at start-up or from the leader). */
  restore(image: Buffer): void;
}
