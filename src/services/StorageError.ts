import { Schema } from "effect"

/**
 * The database (or the memory store standing in for it) failed to do what was asked: connection lost, a
 * serialization failure, a constraint Khala did not expect. The operation had no effect: retrying is safe.
 */
export class StorageError extends Schema.TaggedError<StorageError>()("StorageError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}
