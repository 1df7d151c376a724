import { Effect, Option, Schema } from "effect"
import type { Document, DocumentPage, ListedDocument } from "../../services/Documents.js"
import type { JournalRow } from "../../services/Journal.js"
import type { StorageError } from "../../services/StorageError.js"
import { decodeRows } from "./SqlDecode.js"

/**
 * A bigint column as a safe JS number. Drivers disagree on int8 (`pg` gives strings, some give bigint or number),
 * and a runtime brings its own `SqlClient`, so accept all three.
 */
export const Int8 = Schema.Union(
  Schema.Number,
  Schema.NumberFromString,
  Schema.BigIntFromSelf.pipe(Schema.transform(Schema.Number, { decode: Number, encode: BigInt }))
).pipe(Schema.filter((n) => Number.isSafeInteger(n), { message: () => "int8 beyond 2^53" }))

const Bytea = Schema.Uint8ArrayFromSelf

/** `sha256:<hex>` from raw hash bytes. */
export const hashToString = (bytes: Uint8Array) => `sha256:${Buffer.from(bytes).toString("hex")}`

/** The raw 32 bytes of a `sha256:<hex>` hash. */
export const hashToBytes = (hash: string) => Buffer.from(hash.slice("sha256:".length), "hex")

const Json = Schema.Unknown

export const JournalRowFromSql = Schema.Struct({
  topic: Schema.String,
  watermark: Int8,
  doc_key: Schema.String,
  doc_version: Int8,
  org_id: Schema.String,
  payload: Schema.NullOr(Json),
  // The driver parses jsonb, so a document whose JSON value is `null` and a row without payload (SQL NULL) look
  // alike: the query says which it is.
  pointer: Schema.Boolean,
  deleted: Schema.Boolean,
  payload_hash: Schema.NullOr(Bytea),
  inserted_at: Schema.DateFromSelf,
  trace_context: Schema.optional(Schema.NullOr(Schema.String))
})

export const toJournalRow = (row: typeof JournalRowFromSql.Type): JournalRow => ({
  topic: row.topic,
  watermark: row.watermark,
  docKey: row.doc_key,
  docVersion: row.doc_version,
  orgId: row.org_id,
  payload: row.pointer || row.deleted ? undefined : row.payload,
  pointer: row.pointer,
  deleted: row.deleted,
  payloadHash: row.payload_hash === null ? null : hashToString(row.payload_hash),
  insertedAt: row.inserted_at,
  ...(row.trace_context == null ? {} : { traceContext: row.trace_context })
})

export const DocumentFromSql = Schema.Struct({
  topic: Schema.String,
  doc_key: Schema.String,
  doc_version: Int8,
  org_id: Schema.String,
  payload: Schema.NullOr(Json),
  // whether `payload` holds the document: false for a tombstone, or a document a listing left out for its size
  with_payload: Schema.Boolean,
  payload_hash: Schema.NullOr(Bytea),
  payload_bytes: Int8,
  deleted: Schema.Boolean,
  watermark: Int8,
  updated_at: Schema.DateFromSelf
})

export const toDocument = (row: typeof DocumentFromSql.Type): Document => ({
  topic: row.topic,
  docKey: row.doc_key,
  docVersion: row.doc_version,
  orgId: row.org_id,
  payload: row.with_payload ? row.payload : undefined,
  payloadHash: row.payload_hash === null ? null : hashToString(row.payload_hash),
  payloadBytes: row.payload_bytes,
  deleted: row.deleted,
  watermark: row.watermark,
  updatedAt: row.updated_at
})

/** A listed document's columns: its key, and its JSON as hydration lists it (`listedDocumentJson`). */
const ListedFromSql = Schema.Struct({
  doc_key: Schema.String,
  json: Schema.String
})

/**
 * The values of a listing's row, in this order: the topic's head and epoch (null when the topic is unknown), then
 * whether the row fits the page, and the document (null when the page is empty).
 */
export type ListingRow = readonly [head: unknown, epoch: unknown, fits: unknown, docKey: unknown, json: unknown]

const ListingHeadFromSql = Schema.Struct({ head: Int8, epoch: Schema.String })

const decodeHead = decodeRows(ListingHeadFromSql)
const decodeListed = decodeRows(ListedFromSql)

/**
 * A listing page from its rows (`ListingRow`): at most `limit` documents, up to the first that does not fit; its
 * head and epoch; and the key to list after when more follow. `undefined` when the topic is unknown. The documents
 * are read by hand, a thousand rows costing less that way than through the schema, which still decodes a page
 * holding any other shape, or says what is wrong with it.
 */
export const listingRows = (
  rows: ReadonlyArray<ReadonlyArray<unknown>>,
  limit: number
): Effect.Effect<DocumentPage | undefined, StorageError> =>
  Effect.gen(function*() {
    const first = rows[0] as ListingRow | undefined
    if (first === undefined || first[0] === null) return undefined
    const [head] = yield* decodeHead([{ head: first[0], epoch: first[1] }])
    let fitting = 0
    while (fitting < rows.length && fitting < limit && rows[fitting]![2] === true) fitting++
    const page = (rows as ReadonlyArray<ListingRow>).slice(0, fitting)
    let documents: Array<ListedDocument> = []
    for (const [, , , docKey, json] of page) {
      if (typeof docKey !== "string" || typeof json !== "string") {
        const decoded = yield* decodeListed(page.map(([, , , doc_key, json]) => ({ doc_key, json })))
        documents = decoded.map((d) => ({ docKey: d.doc_key, json: d.json }))
        break
      }
      documents.push({ docKey, json })
    }
    return {
      documents,
      watermark: head!.head,
      epoch: head!.epoch,
      nextKey: fitting > 0 && rows.length > fitting ? Option.some(documents[fitting - 1]!.docKey) : Option.none()
    }
  })
