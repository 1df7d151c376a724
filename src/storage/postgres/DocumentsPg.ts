import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option, Schema } from "effect"
import { checkLimit } from "../../services/Arguments.js"
import { Documents } from "../../services/Documents.js"
import { UnknownTopic } from "../../services/Topic.js"
import { mapStorageError } from "./PgErrors.js"
import { DocumentFromSql, Int8, toDocument } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

// The topic's head; the document columns are null when nothing matched.
const HeadRow = Schema.Struct({ head: Int8, doc_key: Schema.NullOr(Schema.String) })

export const make = Effect.gen(function*() {
  // a runtime's client may transform result names; Khala reads its own columns as named
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodeHeads = decodeRows(HeadRow)
  const decodeDocuments = decodeRows(DocumentFromSql)

  const documentColumns = sql`d.topic, d.doc_key, d.doc_version, d.org_id, d.payload, d.payload_hash, d.watermark,
    d.updated_at`

  return Documents.of({
    get: (topic, docKey) =>
      sql`
        select s.next_watermark as head, ${documentColumns}
          from khala.sync_topic_sequences s
          left join khala.sync_documents d on d.topic = s.topic and d.doc_key = ${docKey}
         where s.topic = ${topic}
      `.pipe(
        mapStorageError,
        Effect.flatMap((rows) =>
          Effect.gen(function*() {
            const heads = yield* decodeHeads(rows)
            if (heads[0] === undefined) return yield* new UnknownTopic({ topic })
            if (heads[0].doc_key === null) return Option.none()
            const documents = yield* decodeDocuments(rows)
            return Option.some(toDocument(documents[0]!))
          })
        )
      ),
    // One statement, one snapshot: the head read beside the page is the watermark the page is consistent with,
    // because a publish writes its document and advances the head in the same commit.
    list: ({ afterKey, limit, orgId, topic }) =>
      Effect.zipRight(
        checkLimit(limit),
        sql`
        select s.next_watermark as head, ${documentColumns}
          from khala.sync_topic_sequences s
          left join lateral (
            select * from khala.sync_documents d
             where d.topic = s.topic and d.org_id = ${orgId} and d.doc_key > ${afterKey ?? ""}
             order by d.doc_key
             limit ${limit + 1}
          ) d on true
         where s.topic = ${topic}
      `.pipe(
          mapStorageError,
          Effect.flatMap((rows) =>
            Effect.gen(function*() {
              const heads = yield* decodeHeads(rows)
              if (heads[0] === undefined) return yield* new UnknownTopic({ topic })
              const all = yield* decodeDocuments(heads[0].doc_key === null ? [] : rows)
              const documents = all.slice(0, limit).map(toDocument)
              return {
                documents,
                watermark: heads[0].head,
                nextKey: all.length > limit ? Option.some(documents[documents.length - 1]!.docKey) : Option.none()
              }
            })
          )
        )
      )
  })
})

export const layer = Layer.effect(Documents, make)
