import type { Stream } from "effect"
import { Context, Schema } from "effect"
import type { StorageError } from "./StorageError.js"

/** One document of a legacy projection: its hash (`sha256:<hex>` of its canonical JSON), or its payload to hash. */
export interface LegacyDocument {
  readonly orgId: string
  readonly docKey: string
  readonly hash?: string | undefined
  readonly payload?: unknown
}

/** The legacy projection could not be read. */
export class LegacyReadError extends Schema.TaggedError<LegacyReadError>()("LegacyReadError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** The projection Khala's read model is audited against (outbox.md), provided by the runtime. */
export class LegacyReader extends Context.Tag("khala/LegacyReader")<LegacyReader, {
  /** Every live document of the topic in the legacy projection, in any order, each `(orgId, docKey)` once. */
  readonly list: (topic: string) => Stream.Stream<LegacyDocument, LegacyReadError>
}>() {}

/** One live document of Khala's read model, as the audit compares it. */
export interface DocumentHash {
  readonly orgId: string
  readonly docKey: string
  readonly hash: string
}

/** The read model's hashes, every org at once: what only an operator's audit may read (I7 holds for clients). */
export class DocumentHashes extends Context.Tag("khala/DocumentHashes")<DocumentHashes, {
  /** Every live document of the topic (tombstones left out), in `(org_id, doc_key)` order, read in pages. */
  readonly list: (topic: string) => Stream.Stream<DocumentHash, StorageError>
}>() {}
