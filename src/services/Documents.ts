import type { Effect, Option } from "effect"
import { Context } from "effect"
import type { StorageError } from "./StorageError.js"
import type { UnknownTopic } from "./Topic.js"

/** The current value of one document: the payload authority (I5). */
export interface Document {
  readonly topic: string
  readonly docKey: string
  readonly docVersion: number
  readonly orgId: string
  readonly payload: unknown
  readonly payloadHash: string
  /** The watermark of the journal row that wrote this version. */
  readonly watermark: number
  readonly updatedAt: Date
}

/**
 * A page of a topic's documents of one org, in `doc_key` order, with the watermark the page is consistent with:
 * every journal row up to it is reflected in the page, none after it.
 */
export interface DocumentPage {
  readonly documents: ReadonlyArray<Document>
  readonly watermark: number
  /** The `doc_key` to pass as `afterKey` for the next page, when there is one. */
  readonly nextKey: Option.Option<string>
}

/** The read model: one row per `(topic, doc_key)` holding the newest version published (I6). */
export class Documents extends Context.Tag("khala/Documents")<Documents, {
  readonly get: (
    topic: string,
    docKey: string
  ) => Effect.Effect<Option.Option<Document>, UnknownTopic | StorageError>
  readonly list: (options: {
    readonly topic: string
    readonly orgId: string
    readonly afterKey?: string | undefined
    readonly limit: number
  }) => Effect.Effect<DocumentPage, UnknownTopic | StorageError>
}>() {}
