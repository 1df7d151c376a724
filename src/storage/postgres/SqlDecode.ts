import { Effect, ParseResult, Schema } from "effect"
import { StorageError } from "../../services/StorageError.js"

/** Decodes result rows; a row of an unexpected shape means the schema is not Khala's: a storage fault. */
export const decodeRows = <A, I>(schema: Schema.Schema<A, I>) => {
  const decode = Schema.decodeUnknown(Schema.Array(schema))
  return (rows: ReadonlyArray<unknown>): Effect.Effect<ReadonlyArray<A>, StorageError> =>
    Effect.mapError(decode(rows), (error) =>
      new StorageError({
        message: `unexpected row from the database: ${ParseResult.TreeFormatter.formatErrorSync(error)}`
      }))
}
