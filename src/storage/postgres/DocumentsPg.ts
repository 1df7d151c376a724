import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option, Schema } from "effect"
import { defaultMaxPayloadBytes } from "../../protocol/UpdateBatch.js"
import { checkLimit } from "../../services/Arguments.js"
import type { ListOptions } from "../../services/Documents.js"
import { Documents } from "../../services/Documents.js"
import { defaultReadMaxBytes } from "../../services/Journal.js"
import { UnknownTopic } from "../../services/Topic.js"
import { mapStorageError } from "./PgErrors.js"
import { DocumentFromSql, Int8, listingRows, toDocument } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

// The topic's position; the document columns are null when nothing matched.
const HeadRow = Schema.Struct({
  head: Int8,
  epoch: Schema.String,
  doc_key: Schema.NullOr(Schema.String)
})

/** `prefix` as a LIKE pattern matching the keys that start with it (doc_key is `collate "C"`: an index range). */
const likePrefix = (prefix: string) => prefix.replace(/[\\%_]/g, (c) => `\\${c}`) + "%"

export const make = Effect.gen(function*() {
  // a runtime's client may transform result names; Khala reads its own columns as named
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodeHeads = decodeRows(HeadRow)
  const decodeDocuments = decodeRows(DocumentFromSql)

  const columns = sql`d.topic, d.doc_key, d.doc_version, d.org_id, d.payload_hash, d.payload_bytes, d.deleted,
    d.watermark, d.updated_at`

  // Every read names the org: another org's document with the same key is another document, never visible (I7).
  const byKeys = (topic: string, orgId: string, docKeys: ReadonlyArray<string>) =>
    sql`
      select s.next_watermark as head, s.epoch, ${columns}, d.payload,
             not d.deleted as with_payload
        from khala.sync_topic_sequences s
        left join khala.sync_documents d
          on d.topic = s.topic and d.org_id = ${orgId} and d.doc_key = any(${docKeys}::text[])
       where s.topic = ${topic}
       order by d.doc_key
    `.pipe(
      mapStorageError,
      Effect.flatMap((rows) =>
        Effect.gen(function*() {
          // every row repeats the topic's head: the first one tells it
          const heads = yield* decodeHeads(rows.slice(0, 1))
          if (heads[0] === undefined) return yield* new UnknownTopic({ topic })
          return (yield* decodeDocuments(heads[0].doc_key === null ? [] : rows)).map(toDocument)
        })
      )
    )

  // One statement, one snapshot: the head read beside the page is the watermark the page is consistent with,
  // because a publish writes its document and advances the head in the same commit (every row repeats it). The page
  // is cut in bytes by a running sum over at most `limit + 1` rows: a row past the budget comes without its payload
  // and says it does not fit, and a document over the per-document limit counts nothing (it is listed without its
  // payload).
  const list = (options: ListOptions) => {
    const maxBytes = options.maxBytes ?? defaultReadMaxBytes
    const maxPayloadBytes = options.maxPayloadBytes ?? defaultMaxPayloadBytes
    const limit = options.limit
    const counted = sql`case when d.payload_bytes > ${maxPayloadBytes} then 0 else d.payload_bytes end`
    const rows = sql`
      select d.doc_key, d.doc_version, d.watermark, d.payload_hash, d.payload_bytes, d.payload,
             sum(${counted}) over (order by d.doc_key rows unbounded preceding) - ${counted} < ${maxBytes} as fits
        from khala.sync_documents d
       where d.topic = ${options.topic} and d.org_id = ${options.orgId} and not d.deleted
         and d.doc_key > ${options.afterKey ?? ""}
         ${options.docKeyPrefix === undefined ? sql`` : sql`and d.doc_key like ${likePrefix(options.docKeyPrefix)}`}
       order by d.doc_key
       limit ${limit + 1}`
    // Each document is rendered as hydration lists it (`listedDocumentJson`) by Postgres: one text value a row,
    // where reading each field of a thousand rows only to encode it again cost the server more than the database.
    // to_json escapes a key as JSON.stringify does; jsonb's text is valid JSON (not canonical, as before).
    const listedColumns = sql`l.fits, l.doc_key,
      '{"doc_key":' || to_json(l.doc_key)::text || ',"doc_version":' || l.doc_version || ',"payload":' ||
        coalesce(case when l.fits and l.payload_bytes <= ${maxPayloadBytes} then l.payload::text end, 'null') ||
        ',"payload_hash":"sha256:' || encode(l.payload_hash, 'hex') || '","watermark":' || l.watermark ||
        ',"deleted":false,"hydration_required":' || (l.payload_bytes > ${maxPayloadBytes})::text || '}'`
    // The head as a scalar beside rows already in key order costs no sort. An empty page has no row to carry it:
    // then a join that keeps the topic's row when no document matches (and so must sort, which costs nothing on an
    // empty page) reads the head and the page again, in one snapshot of their own.
    const page = sql`
      select (select s.next_watermark from khala.sync_topic_sequences s where s.topic = ${options.topic}),
             (select s.epoch from khala.sync_topic_sequences s where s.topic = ${options.topic}),
             ${listedColumns}
        from (${rows}) l
       order by l.doc_key`.values
    const emptyPage = sql`
      select s.next_watermark, s.epoch, ${listedColumns}
        from khala.sync_topic_sequences s
        left join lateral (${rows}) l on true
       where s.topic = ${options.topic}
       order by l.doc_key`.values
    return Effect.gen(function*() {
      yield* checkLimit(limit)
      let values = yield* mapStorageError(page)
      if (values.length === 0) values = yield* mapStorageError(emptyPage)
      const read = yield* listingRows(values, limit)
      if (read === undefined) return yield* new UnknownTopic({ topic: options.topic })
      return read
    })
  }

  return Documents.of({
    get: (topic, orgId, docKey) =>
      Effect.map(byKeys(topic, orgId, [docKey]), (documents) => Option.fromNullable(documents[0])),
    getMany: (topic, orgId, docKeys) => byKeys(topic, orgId, docKeys),
    list
  })
})

export const layer = Layer.effect(Documents, make)
