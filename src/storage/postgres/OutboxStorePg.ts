import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option, Schema } from "effect"
import { OutboxStore } from "../../services/OutboxStore.js"
import { StorageError } from "../../services/StorageError.js"
import { UnknownTopic } from "../../services/Topic.js"
import { mapStorageError } from "./PgErrors.js"
import { Int8 } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

const CursorRow = Schema.Struct({ sink: Schema.String, topic: Schema.String, watermark: Int8 })
const WatermarkRow = Schema.Struct({ watermark: Int8 })
const LockedRow = Schema.Struct({ locked: Schema.Boolean })
const CountRow = Schema.Struct({ count: Int8 })

/** How often the forwarding node checks that the connection holding its lock is alive. */
const lockCheckInterval = "2 seconds"

const storeOf = (
  sql: SqlClient.SqlClient,
  exclusive: OutboxStore["Type"]["exclusive"]
) => {
  const decodeCursor = decodeRows(CursorRow)
  const decodeWatermark = decodeRows(WatermarkRow)
  const decodeCount = decodeRows(CountRow)
  return OutboxStore.of({
    // One statement: the cursor, or a new one at the topic's floor (nothing at or below it is retained any more).
    cursor: (sink, topic) =>
      sql`
        with created as (
          insert into khala.sync_outbox_cursors (sink, topic, watermark)
          select ${sink}, topic, retention_floor from khala.sync_topic_sequences where topic = ${topic}
          on conflict (sink, topic) do nothing
          returning watermark
        )
        select watermark from created
        union all
        select watermark from khala.sync_outbox_cursors where sink = ${sink} and topic = ${topic}
      `.pipe(
        mapStorageError,
        Effect.flatMap(decodeWatermark),
        Effect.flatMap((rows) =>
          rows[0] === undefined ? Effect.fail(new UnknownTopic({ topic })) : Effect.succeed(rows[0].watermark)
        )
      ),
    advance: (sink, topic, watermark) =>
      sql`
        update khala.sync_outbox_cursors set watermark = ${watermark}, updated_at = now()
         where sink = ${sink} and topic = ${topic} and watermark < ${watermark}
      `.pipe(mapStorageError, Effect.asVoid),
    cursors: sql`select sink, topic, watermark from khala.sync_outbox_cursors order by sink, topic`.pipe(
      mapStorageError,
      Effect.flatMap(decodeCursor)
    ),
    drop: (sink) =>
      sql`
        with deleted as (delete from khala.sync_outbox_cursors where sink = ${sink} returning 1)
        select count(*) as count from deleted
      `.pipe(mapStorageError, Effect.flatMap(decodeCount), Effect.map((rows) => rows[0]?.count ?? 0)),
    exclusive
  })
}

/**
 * The cursors on a Postgres server that several Khala processes share: one process forwards for a sink at a time,
 * holding a session-level advisory lock on a connection reserved for as long as it forwards. Postgres releases the
 * lock when that process dies; a live process checks its connection every few seconds and stops forwarding if it
 * ended, since another process may hold the lock by then.
 */
export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodeLocked = decodeRows(LockedRow)
  const lockKey = (sink: string) => `khala.outbox:${sink}`

  const exclusive: OutboxStore["Type"]["exclusive"] = (sink, effect) =>
    Effect.scoped(Effect.gen(function*() {
      const connection = yield* sql.reserve.pipe(mapStorageError)
      const [row] = yield* connection.execute(
        "select pg_try_advisory_lock(hashtextextended($1, 0)) as locked",
        [lockKey(sink)],
        undefined
      ).pipe(mapStorageError, Effect.flatMap(decodeLocked))
      if (row?.locked !== true) return Option.none()
      yield* Effect.addFinalizer(() =>
        Effect.ignore(
          connection.execute("select pg_advisory_unlock(hashtextextended($1, 0))", [lockKey(sink)], undefined)
        )
      )
      const lost = Effect.gen(function*() {
        while (true) {
          yield* Effect.sleep(lockCheckInterval)
          yield* connection.execute("select 1", [], undefined).pipe(
            mapStorageError,
            Effect.mapError((error) =>
              new StorageError({ message: `lost the outbox lock of ${sink}: ${error.message}`, cause: error })
            )
          )
        }
      })
      return Option.some(yield* Effect.raceFirst(effect, lost))
    }))

  return storeOf(sql, exclusive)
})

/**
 * The cursors on a database only this process opens (the embedded one, whose data directory is locked to one
 * process): forwarding needs no lock between processes, and must not hold the embedded database's one session.
 */
export const makeSingleProcess = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const forwarding = yield* Effect.makeSemaphore(1)
  return storeOf(sql, (_sink, effect) => forwarding.withPermitsIfAvailable(1)(effect))
})

export const layer: Layer.Layer<OutboxStore, never, SqlClient.SqlClient> = Layer.effect(OutboxStore, make)

export const layerSingleProcess: Layer.Layer<OutboxStore, never, SqlClient.SqlClient> = Layer.effect(
  OutboxStore,
  makeSingleProcess
)
