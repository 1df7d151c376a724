import { SqlClient } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { defaultMaxPayloadBytes } from "../../protocol/UpdateBatch.js"
import { checkLimit, checkWatermark } from "../../services/Arguments.js"
import { defaultReadMaxBytes, Journal, StaleCursor } from "../../services/Journal.js"
import { UnknownTopic } from "../../services/Topic.js"
import { mapStorageError } from "./PgErrors.js"
import { Int8, JournalRowFromSql, toJournalRow } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

// The topic's position; the row columns are null when nothing follows the cursor.
const PositionRow = Schema.Struct({
  head: Int8,
  retention_floor: Int8,
  epoch: Schema.String,
  watermark: Schema.NullOr(Schema.Unknown),
  fits: Schema.NullOr(Schema.Boolean)
})
const FloorRow = Schema.Struct({ retention_floor: Int8, lowest: Schema.NullOr(Int8) })
const CountRow = Schema.Struct({ count: Int8 })
const NextRow = Schema.Struct({ next: Schema.NullOr(Int8) })

/** Rows deleted per statement by a prune, so that it never holds many row locks or a long transaction. */
export const pruneBatch = 10_000

export const make = Effect.gen(function*() {
  // a runtime's client may transform result names; Khala reads its own columns as named
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodePositions = decodeRows(PositionRow)
  const decodeEvents = decodeRows(JournalRowFromSql)
  const decodeFloor = decodeRows(FloorRow)
  const decodeCount = decodeRows(CountRow)
  const decodeNext = decodeRows(NextRow)

  // The first watermark above `after` that has a row, for stepping over a hole in one read.
  const nextRow = (topic: string, after: number) =>
    sql`select min(watermark) as next from khala.sync_stream_events where topic = ${topic} and watermark > ${after}`
      .pipe(mapStorageError, Effect.flatMap(decodeNext), Effect.map((rows) => rows[0]?.next ?? null))

  return Journal.of({
    // One statement, so the rows, the head, the floor and the epoch come from one snapshot; commit order equals
    // watermark order (I3), so every watermark up to the head is committed, and the range (after, after + limit]
    // holds every row there is in it: the bound keeps the plan an index range scan whatever the table's statistics
    // say. Rows past the byte budget come back without payload and are dropped here; payloads over the per-update
    // limit are never sent over the wire at all.
    read: (topic, after, limit, options) => {
      const maxPayloadBytes = options?.maxPayloadBytes ?? defaultMaxPayloadBytes
      const maxBytes = options?.maxBytes ?? defaultReadMaxBytes
      return Effect.zipRight(checkWatermark("after", after), checkLimit(limit)).pipe(Effect.zipRight(sql`
        select s.next_watermark as head, s.retention_floor, s.epoch, e.topic, e.watermark, e.doc_key, e.doc_version,
               e.org_id, e.deleted, e.payload_hash, e.inserted_at, e.trace_context, e.fits,
               case when e.fits and not e.pointer then e.payload end as payload, e.pointer
          from khala.sync_topic_sequences s
          left join lateral (
            select r.*, r.running - r.counted < ${maxBytes} as fits
              from (
                select e.*,
                       (e.payload is null or e.payload_bytes > ${maxPayloadBytes}) and not e.deleted as pointer,
                       case when e.payload_bytes > ${maxPayloadBytes} then 0 else e.payload_bytes end as counted,
                       sum(case when e.payload_bytes > ${maxPayloadBytes} then 0 else e.payload_bytes end)
                         over (order by e.watermark) as running
                  from khala.sync_stream_events e
                 where e.topic = s.topic and e.watermark > ${after} and e.watermark <= ${after + limit}
                   and ${after} >= s.retention_floor
                 order by e.watermark
                 limit ${limit}
              ) r
          ) e on true
         where s.topic = ${topic}
         order by e.watermark
      `.pipe(
        mapStorageError,
        Effect.flatMap((rows) =>
          Effect.gen(function*() {
            const position = (yield* decodePositions(rows))[0]
            if (position === undefined) return yield* new UnknownTopic({ topic })
            if (after < position.retention_floor) {
              return yield* new StaleCursor({ topic, after, retentionFloor: position.retention_floor })
            }
            const positions = yield* decodePositions(rows)
            const fitting = rows.filter((_, i) => positions[i]!.fits === true)
            const events = (yield* decodeEvents(fitting)).map(toJournalRow)
            const cut = fitting.length < rows.length && position.watermark !== null
            let through = cut ? events[events.length - 1]!.watermark : Math.min(after + limit, position.head)
            // a hole longer than the range (rows erased, a repair): step to the row after it at once
            if (events.length === 0 && through < position.head) {
              // read in a later snapshot: a row it finds above this read's head must not be stepped over
              const next = yield* nextRow(topic, through)
              through = next === null ? position.head : Math.min(next - 1, position.head)
            }
            return {
              rows: events,
              through,
              head: position.head,
              retentionFloor: position.retention_floor,
              epoch: position.epoch
            }
          })
        )
      )))
    },
    // The floor is raised first, in a statement of its own (after which the rows at or below it are unreachable: a
    // read below the floor is stale); then the rows are deleted in bounded batches, without holding the topic's row,
    // and so are the tombstones of documents deleted at or below the floor.
    prune: (topic, through, options) =>
      Effect.gen(function*() {
        yield* checkWatermark("through", through)
        const raised = yield* sql`
          update khala.sync_topic_sequences
             set retention_floor = greatest(retention_floor, least(${through}::bigint, next_watermark))
           where topic = ${topic}
          returning retention_floor,
                    (select min(watermark) from khala.sync_stream_events where topic = ${topic}) as lowest
        `.pipe(mapStorageError, Effect.flatMap(decodeFloor))
        if (raised[0] === undefined) return yield* new UnknownTopic({ topic })
        const floor = raised[0].retention_floor
        let deleted = 0
        for (let from = (raised[0].lowest ?? floor + 1) - 1; from < floor; from += pruneBatch) {
          const batch = yield* sql`
            with deleted as (
              delete from khala.sync_stream_events
               where topic = ${topic} and watermark > ${from} and watermark <= ${Math.min(from + pruneBatch, floor)}
              returning 1
            )
            select count(*) as count from deleted
          `.pipe(mapStorageError, Effect.flatMap(decodeCount))
          deleted += batch[0]?.count ?? 0
          if (options?.onBatch !== undefined) yield* options.onBatch(batch[0]?.count ?? 0)
        }
        while (true) {
          const tombstones = yield* sql`
            with deleted as (
              delete from khala.sync_documents
               where ctid in (select ctid from khala.sync_documents
                               where topic = ${topic} and deleted and watermark <= ${floor} limit ${pruneBatch})
              returning 1
            )
            select count(*) as count from deleted
          `.pipe(mapStorageError, Effect.flatMap(decodeCount))
          if ((tombstones[0]?.count ?? 0) < pruneBatch) break
        }
        return { topic, deleted, retentionFloor: floor }
      })
  })
})

export const layer = Layer.effect(Journal, make)
