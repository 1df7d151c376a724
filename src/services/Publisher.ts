import type { Effect } from "effect"
import { Context, Schema } from "effect"
import type { StorageError } from "./StorageError.js"
import type { UnknownTopic } from "./Topic.js"
import type { TopicHead } from "./Wakeups.js"

/** Longest topic, doc_key or org_id, in UTF-8 bytes: they are index keys, and btree entries are bounded. */
export const maxKeyBytes = 1024

const encoder = new TextEncoder()

// Postgres text cannot hold NUL, and an unpaired surrogate would be stored as U+FFFD, under another key.
const NonEmpty = (what: string) =>
  Schema.String.pipe(
    Schema.minLength(1, { message: () => `${what} must be a non-empty string` }),
    Schema.filter((s) => !s.includes("\u0000") && s.isWellFormed(), {
      message: () => `${what} must not contain NUL or unpaired surrogates`
    }),
    // a UTF-16 unit encodes to at most 3 bytes: only long strings need encoding to be measured
    Schema.filter((s) => s.length * 3 <= maxKeyBytes || encoder.encode(s).length <= maxKeyBytes, {
      message: () => `${what} must be at most ${maxKeyBytes} bytes of UTF-8`
    })
  )

const documentId = {
  topic: NonEmpty("topic"),
  docKey: NonEmpty("docKey"),
  docVersion: Schema.Int.pipe(
    Schema.nonNegative({ message: () => "docVersion must be a non-negative integer" }),
    Schema.filter((n) => Number.isSafeInteger(n), { message: () => "docVersion must be a safe integer" })
  ),
  orgId: NonEmpty("orgId")
}

/**
 * A read-model document to publish: upserted if its version is newer than the org's stored one, then appended to
 * its topic's journal. Document keys belong to their org: the same `docKey` in two orgs is two documents (I7).
 */
export const PublishUpdate = Schema.Struct({
  ...documentId,
  /** Any JSON value: the document. */
  payload: Schema.Unknown,
  /** Pointer mode for this update: the journal row omits the payload and clients hydrate it (I5). */
  pointer: Schema.optional(Schema.Boolean)
})
export type PublishUpdate = typeof PublishUpdate.Type

/**
 * A document to delete (protocol.md §7): if `docVersion` is newer than the stored one, a journal row with `deleted: true`
 * is appended and the read model keeps a tombstone at that version, so that versions stay monotonic (I6).
 */
export const RemoveUpdate = Schema.Struct(documentId)
export type RemoveUpdate = typeof RemoveUpdate.Type

/** The update cannot be published as given; nothing was written. */
export class InvalidUpdate extends Schema.TaggedError<InvalidUpdate>()("InvalidUpdate", {
  message: Schema.String,
  /** Position in a `publishAll` batch, when the update came from one. */
  index: Schema.optional(Schema.Number)
}) {}

/** What a publish did. */
export type PublishOutcome =
  /** Appended at `watermark` of its topic; the read model now holds this version. */
  | { readonly _tag: "Appended"; readonly topic: string; readonly watermark: number }
  /** The stored document already has this or a newer version: nothing was written (I6). */
  | { readonly _tag: "NotNewer"; readonly topic: string }

export const Appended = (topic: string, watermark: number): PublishOutcome => ({ _tag: "Appended", topic, watermark })
export const NotNewer = (topic: string): PublishOutcome => ({ _tag: "NotNewer", topic })

/** The highest appended watermark per topic among `outcomes`. */
export const appendedHeads = (outcomes: ReadonlyArray<PublishOutcome>): Array<TopicHead> => {
  const heads = new Map<string, number>()
  for (const outcome of outcomes) {
    if (outcome._tag === "Appended") {
      heads.set(outcome.topic, Math.max(heads.get(outcome.topic) ?? 0, outcome.watermark))
    }
  }
  return Array.from(heads, ([topic, head]) => ({ topic, head }))
}

export type PublishError = InvalidUpdate | UnknownTopic | StorageError

/**
 * The runtime-facing append path (design.md §4). Inside the caller's `SqlClient.withTransaction` the append joins that
 * transaction and commits or rolls back with the caller's own writes; the topic's sequence row then stays locked
 * until that commit, so publish last in the transaction. Outside a transaction each call is its own transaction.
 */
export class Publisher extends Context.Tag("khala/Publisher")<Publisher, {
  /** Resolves once the append is durable (or, in a caller's transaction, part of it). */
  readonly publish: (update: PublishUpdate) => Effect.Effect<PublishOutcome, PublishError>
  /** Publishes many updates atomically, in order, as if one by one; outcomes in input order. */
  readonly publishAll: (
    updates: ReadonlyArray<PublishUpdate>
  ) => Effect.Effect<ReadonlyArray<PublishOutcome>, PublishError>
  /** Deletes a document: like `publish`, with a tombstone for the document and `deleted: true` in its journal row. */
  readonly remove: (update: RemoveUpdate) => Effect.Effect<PublishOutcome, PublishError>
}>() {}
