import type { Effect } from "effect"
import { Context } from "effect"
import type { PublishError, PublishOutcome, PublishUpdate } from "./Publisher.js"

/** A validated change of one document, with its canonical JSON, hash and size computed once in process. */
export interface PreparedUpdate extends PublishUpdate {
  /** A delete: no payload, no hash. */
  readonly deleted: boolean
  /** The canonical JSON of the payload; the text `null` for a delete, which stores none. */
  readonly canonicalPayload: string
  /** `sha256:<hex>`; null for a delete. */
  readonly payloadHash: string | null
  /** UTF-8 bytes of `canonicalPayload` (0 for a delete). */
  readonly payloadBytes: number
  /** The `traceparent` the journal row carries, when tracing is on (docs/metrics.md, "Traces"). */
  readonly traceContext?: string | undefined
}

/**
 * The storage side of publishing: writes prepared updates to the read model and the journal, each call atomic on
 * its own and joining the caller's transaction when there is one. The `Publisher` is built over it (validation,
 * group commit, wake-ups); every storage backend implements it.
 */
export class Appender extends Context.Tag("khala/Appender")<Appender, {
  /** Whether the current fiber runs inside a caller's transaction of this store: the commit is then the caller's. */
  readonly inTransaction: Effect.Effect<boolean>
  /** Appends one update. Inside a caller's transaction a typed failure leaves that transaction usable. */
  readonly appendOne: (update: PreparedUpdate) => Effect.Effect<PublishOutcome, PublishError>
  /**
   * Appends updates atomically, in order, as if one by one; outcomes in input order. With `lockWaitMs`, a topic
   * held by another transaction for longer fails the call with a `StorageError` of reason `busy` instead of waiting.
   */
  readonly appendAll: (
    updates: ReadonlyArray<PreparedUpdate>,
    options?: {
      readonly lockWaitMs?: number | undefined
      /** The `traceparent` every row of the call carries (the shared commit's span); else each update's own. */
      readonly traceContext?: string | undefined
    }
  ) => Effect.Effect<ReadonlyArray<PublishOutcome>, PublishError>
}>() {}
