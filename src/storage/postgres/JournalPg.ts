import { SqlClient } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { checkLimit, checkWatermark } from "../../services/Arguments.js"
import { Journal, StaleCursor } from "../../services/Journal.js"
import { UnknownTopic } from "../../services/Topic.js"
import { mapStorageError } from "./PgErrors.js"
import { Int8, JournalRowFromSql, toJournalRow } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

// The topic's position; the row columns are null when nothing follows the cursor.
const PositionRow = Schema.Struct({ head: Int8, retention_floor: Int8, watermark: Schema.NullOr(Schema.Unknown) })

const FloorRow = Schema.Struct({ retention_floor: Int8 })
const DeletedRow = Schema.Struct({ deleted: Int8 })

export const make = Effect.gen(function*() {
  // a runtime's client may transform result names; Khala reads its own columns as named
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodePositions = decodeRows(PositionRow)
  const decodeEvents = decodeRows(JournalRowFromSql)
  const decodeFloor = decodeRows(FloorRow)
  const decodeDeleted = decodeRows(DeletedRow)

  return Journal.of({
    // One statement, so the rows, the head and the floor come from one snapshot; commit order equals watermark
    // order (I3), so the rows are a gap-free prefix of what follows `after`. Watermarks above the floor are dense
    // (I2), so the next `limit` rows lie in (after, after + limit]: the bound keeps the plan an index range scan
    // whatever the table's statistics say (after a bulk append, stale ones made it sort every following row).
    read: (topic, after, limit) =>
      Effect.zipRight(checkWatermark("after", after), checkLimit(limit)).pipe(Effect.zipRight(sql`
        select s.next_watermark as head, s.retention_floor, e.topic, e.watermark, e.doc_key, e.doc_version,
               e.org_id, e.payload, e.payload is null as pointer, e.payload_hash, e.inserted_at
          from khala.sync_topic_sequences s
          left join lateral (
            select * from khala.sync_stream_events e
             where e.topic = s.topic and e.watermark > ${after} and e.watermark <= ${after + limit}
               and ${after} >= s.retention_floor
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
      ))),
    // Two statements, each atomic: first the floor is raised (after which the rows at or below it are unreachable:
    // a read below the floor is stale), then they are deleted, without holding the topic's row while deleting.
    prune: (topic, through) =>
      Effect.gen(function*() {
        yield* checkWatermark("through", through)
        const raised = yield* sql`
          update khala.sync_topic_sequences
             set retention_floor = greatest(retention_floor, least(${through}::bigint, next_watermark))
           where topic = ${topic}
          returning retention_floor
        `.pipe(mapStorageError, Effect.flatMap(decodeFloor))
        if (raised[0] === undefined) return yield* new UnknownTopic({ topic })
        const floor = raised[0].retention_floor
        const deleted = yield* sql`
          with deleted as (
            delete from khala.sync_stream_events where topic = ${topic} and watermark <= ${floor} returning 1
          )
          select count(*) as deleted from deleted
        `.pipe(mapStorageError, Effect.flatMap(decodeDeleted))
        return { topic, deleted: deleted[0]?.deleted ?? 0, retentionFloor: floor }
      })
  })
})

export const layer = Layer.effect(Journal, make)
