import { Schema } from "effect"

/**
 * The database (or the memory store standing in for it) failed to do what was asked: connection lost, a deadlock
 * or serialization failure, a constraint Khala did not expect. A standalone operation that failed this way had no
 * effect and may be retried; inside a caller's transaction, the transaction is usually lost with it (Postgres aborts
 * it), so the caller retries its whole transaction.
 */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  message: Schema.String,
  /**
   * Why, when it says what to do: `conflict` (a deadlock or serialization failure: retry at once) or `busy` (a lock
   * was not granted in time: retry later).
   */
  reason: Schema.optional(Schema.Literal("conflict", "busy")),
  cause: Schema.optional(Schema.Defect)
}) {}
