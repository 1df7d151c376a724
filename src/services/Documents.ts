import type { Effect, Option } from "effect"
import { Context } from "effect"
import type { StorageError } from "./StorageError.js"
import type { UnknownTopic } from "./Topic.js"

/**
 * The current value of one document of one org: the payload authority (I5). A deleted document is a tombstone that
 * keeps its version (I6) and has no payload.
 */
export interface Document {
  readonly topic: string
  readonly docKey: string
  readonly docVersion: number
  readonly orgId: string
  /**
   * The document; `undefined` when it is deleted, or when a listing left it out for being over its per-document
   * limit (`payloadBytes` tells): the caller then fetches it alone.
   */
  readonly payload: unknown
  /** `sha256:<hex>` of the canonical JSON of the document; null for a tombstone. */
  readonly payloadHash: string | null
  /** UTF-8 bytes of the canonical JSON of the document (0 for a tombstone). */
  readonly payloadBytes: number
  readonly deleted: boolean
  /** The watermark of the journal row that wrote this version. */
  readonly watermark: number
  readonly updatedAt: Date
}

/**
 * A live document as a listing gives it: its payload as JSON text, to be passed on as it is. A listing serves pages
 * of up to a thousand documents, and parsing every payload only to serialize it again was most of a page's cost.
 */
export interface ListedDocument {
  readonly docKey: string
  readonly docVersion: number
  /**
   * The document as JSON text (valid JSON, not necessarily canonical); `undefined` when the listing left it out for
   * being over its per-document limit (`payloadBytes` tells): the caller then fetches it alone.
   */
  readonly payloadJson: string | undefined
  /** `sha256:<hex>` of the canonical JSON of the document. */
  readonly payloadHash: string
  /** UTF-8 bytes of the canonical JSON of the document. */
  readonly payloadBytes: number
  /** The watermark of the journal row that wrote this version. */
  readonly watermark: number
}

/**
 * A page of a topic's live documents of one org (tombstones are left out), in `doc_key` order (by code point), with
 * the snapshot it was read in.
 */
export interface DocumentPage {
  readonly documents: ReadonlyArray<ListedDocument>
  /** The topic's head in the page's snapshot: every journal row up to it is reflected in the page, none after it. */
  readonly watermark: number
  /** The topic's epoch in the same snapshot (protocol.md §7). */
  readonly epoch: string
  /** The `doc_key` to pass as `afterKey` for the next page, when there is one. */
  readonly nextKey: Option.Option<string>
}

export interface ListOptions {
  readonly topic: string
  readonly orgId: string
  /** Only documents whose key starts with it. */
  readonly docKeyPrefix?: string | undefined
  /** Only documents whose key sorts after it (keyset pagination). */
  readonly afterKey?: string | undefined
  /** Most documents of the page. */
  readonly limit: number
  /** Most payload bytes of the page; a page always holds at least one document when any follows. */
  readonly maxBytes?: number | undefined
  /** Documents over this many payload bytes are listed without their payload. */
  readonly maxPayloadBytes?: number | undefined
}

/**
 * The read model: one row per `(topic, org_id, doc_key)` holding the newest version published (I6). Every read is
 * within one org: another org's documents are not visible, whatever their keys (I7).
 */
export class Documents extends Context.Tag("khala/Documents")<Documents, {
  /** One document of the org, a tombstone included. */
  readonly get: (
    topic: string,
    orgId: string,
    docKey: string
  ) => Effect.Effect<Option.Option<Document>, UnknownTopic | StorageError>
  /** The documents of the org among `docKeys` that exist, tombstones included, in `doc_key` order. */
  readonly getMany: (
    topic: string,
    orgId: string,
    docKeys: ReadonlyArray<string>
  ) => Effect.Effect<ReadonlyArray<Document>, UnknownTopic | StorageError>
  readonly list: (options: ListOptions) => Effect.Effect<DocumentPage, UnknownTopic | StorageError>
}>() {}
