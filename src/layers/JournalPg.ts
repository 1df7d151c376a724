import { SqlClient } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { Journal, StaleCursor } from "../services/Journal.js"
import { UnknownTopic } from "../services/Topic.js"
import { mapStorageError } from "./PgErrors.js"
import { Int8, JournalRowFromSql, toJournalRow } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

// The topic's position; the row columns are null when nothing follows the cursor.
const PositionRow = Schema.Struct({ head: Int8, retention_floor: Int8, watermark: Schema.NullOr(Schema.Unknown) })

const PruneRow = Schema.Struct({ deleted: Int8, retention_floor: Int8 })

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const decodePositions = decodeRows(PositionRow)
  const decodeEvents = decodeRows(JournalRowFromSql)
  const decodePrune = decodeRows(PruneRow)

  return Journal.of({
    // One statement, so the rows, the head and the floor come from one snapshot; commit order equals watermark
    // order (I3), so the rows are a gap-free prefix of what follows `after`.
    read: (topic, after, limit) =>
      sql`
        select s.next_watermark as head, s.retention_floor, e.topic, e.watermark, e.doc_key, e.doc_version,
               e.org_id, e.payload, e.payload is null as pointer, e.payload_hash, e.inserted_at
          from khala.sync_topic_sequences s
          left join lateral (
            select * from khala.sync_stream_events e
             where e.topic = s.topic and e.watermark > ${after} and ${after} >= s.retention_floor
             order by e.watermark
             limit ${limit}
          ) e on true
         where s.topic = ${topic}
      `.pipe(
        mapStorageError,
        Effect.flatMap((rows) =>
          Effect.gen(function*() {
            const position = (yield* decodePositions(rows))[0]
            if (position === undefined) return yield* new UnknownTopic({ topic })
            if (after < position.retention_floor) {
              return yield* new StaleCursor({ topic, after, retentionFloor: position.retention_floor })
            }
            const events = yield* decodeEvents(position.watermark === null ? [] : rows)
            return { rows: events.map(toJournalRow), head: position.head, retentionFloor: position.retention_floor }
          })
        )
      ),
    prune: (topic, through) =>
      sql`
        with target as (
          select s.topic, greatest(s.retention_floor, least(${through}::bigint, s.next_watermark)) as floor
            from khala.sync_topic_sequences s
           where s.topic = ${topic}
             for no key update
        ), deleted as (
          delete from khala.sync_stream_events e
           using target
           where e.topic = target.topic and e.watermark <= target.floor
          returning 1
        ), raised as (
          update khala.sync_topic_sequences s
             set retention_floor = target.floor
            from target
           where s.topic = target.topic
          returning s.retention_floor
        )
        select (select count(*) from deleted) as deleted, retention_floor from raised
      `.pipe(
        mapStorageError,
        Effect.flatMap(decodePrune),
        Effect.flatMap((rows) =>
          rows[0] === undefined
            ? Effect.fail(new UnknownTopic({ topic }))
            : Effect.succeed({ topic, deleted: rows[0].deleted, retentionFloor: rows[0].retention_floor })
        )
      )
  })
})

export const layer = Layer.effect(Journal, make)
