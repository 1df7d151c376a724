import { SqlClient } from "@effect/sql"
import { Chunk, Effect, Layer, Option, Schema, Stream } from "effect"
import { DocumentHashes } from "../../services/Audit.js"
import { mapStorageError } from "./PgErrors.js"
import { decodeRows } from "./SqlDecode.js"

const HashRow = Schema.Struct({ org_id: Schema.String, doc_key: Schema.String, hash: Schema.String })

/** Documents per page: a keyset page on the primary key, so a large topic never holds one long snapshot. */
const pageSize = 1000

export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decode = decodeRows(HashRow)
  const page = (topic: string, after: Option.Option<readonly [string, string]>) =>
    Option.match(after, {
      onNone: () =>
        sql`
          select org_id, doc_key, 'sha256:' || encode(payload_hash, 'hex') as hash from khala.sync_documents
           where topic = ${topic} and not deleted
           order by org_id, doc_key limit ${pageSize}`,
      onSome: ([orgId, docKey]) =>
        sql`
          select org_id, doc_key, 'sha256:' || encode(payload_hash, 'hex') as hash from khala.sync_documents
           where topic = ${topic} and not deleted and (org_id, doc_key) > (${orgId}, ${docKey})
           order by org_id, doc_key limit ${pageSize}`
    }).pipe(mapStorageError, Effect.flatMap(decode))

  return DocumentHashes.of({
    list: (topic) =>
      Stream.paginateChunkEffect(
        Option.none<readonly [string, string]>(),
        (after) =>
          Effect.map(page(topic, after), (rows) => {
            const last = rows.at(-1)
            const documents = Chunk.fromIterable(
              rows.map((r) => ({ orgId: r.org_id, docKey: r.doc_key, hash: r.hash }))
            )
            return [
              documents,
              rows.length < pageSize || last === undefined
                ? Option.none()
                : Option.some(Option.some([last.org_id, last.doc_key] as const))
            ] as const
          })
      )
  })
})

export const layer: Layer.Layer<DocumentHashes, never, SqlClient.SqlClient> = Layer.effect(DocumentHashes, make)
