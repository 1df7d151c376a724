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
 * A live document as a listing gives it: its key, and the document as hydration lists it (protocol.md §6), as JSON
 * text to be passed on as it is. A listing serves pages of up to a thousand documents: parsing every payload only to
 * serialize it again was most of a page's cost, and so was reading each field of each document to encode it again.
 */
export interface ListedDocument {
  readonly docKey: string
  /** `listedDocumentJson` of the document: how Postgres renders it in SQL, and the memory store in TypeScript. */
  readonly json: string
}

/**
 * A listed document's JSON: `{doc_key, doc_version, payload, payload_hash, watermark, deleted: false,
 * hydration_required}`, with `payloadJson` (the document as JSON text) spliced in, or `payload: null` and
 * `hydration_required: true` when the listing leaves it out for being over its per-document limit.
 */
export const listedDocumentJson = (document: {
  readonly docKey: string
  readonly docVersion: number
  readonly payloadJson: string | undefined
  readonly payloadHash: string
  readonly watermark: number
}): string =>
  `{"doc_key":${JSON.stringify(document.docKey)},"doc_version":${document.docVersion},` +
  `"payload":${document.payloadJson ?? "null"},"payload_hash":${JSON.stringify(document.payloadHash)},` +
  `"watermark":${document.watermark},"deleted":false,"hydration_required":${document.payloadJson === undefined}}`

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
