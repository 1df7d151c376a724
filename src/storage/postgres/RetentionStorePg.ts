import { SqlClient } from "@effect/sql"
import { Effect, Layer, Option, Schema } from "effect"
import { RetentionStore } from "../../services/RetentionStore.js"
import { mapStorageError } from "./PgErrors.js"
import { Int8 } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

// Any constant works: it only has to be the same in every Khala process (and differ from the migrations' key).
const retentionLockKey = 0x6b68616c6172 // "khalar"

const LockedRow = Schema.Struct({ locked: Schema.Boolean })
const WatermarkRow = Schema.Struct({ watermark: Int8 })

export const make = Effect.gen(function*() {
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodeLocked = decodeRows(LockedRow)
  const decodeWatermark = decodeRows(WatermarkRow)

  return RetentionStore.of({
    // A session-level advisory lock on a connection reserved for the run: held across the run's many short
    // statements, and released by Postgres if this process dies mid-run. The run's statements use that connection
    // too (each commits on its own: no transaction is opened on it), so the run holds one connection, and on the
    // embedded database, whose reserved connection holds its one session, the run does not wait for itself.
    exclusive: (effect) =>
      Effect.scoped(Effect.gen(function*() {
        const connection = yield* sql.reserve.pipe(mapStorageError)
        const [row] = yield* connection.execute(
          "select pg_try_advisory_lock($1) as locked",
          [retentionLockKey],
          undefined
        )
          .pipe(mapStorageError, Effect.flatMap(decodeLocked))
        if (row?.locked !== true) return Option.none()
        yield* Effect.addFinalizer(() =>
          Effect.ignore(connection.execute("select pg_advisory_unlock($1)", [retentionLockKey], undefined))
        )
        return Option.some(yield* Effect.provideService(effect, SqlClient.TransactionConnection, [connection, 0]))
      })),
    watermarkBefore: (topic, before) =>
      sql`
        select watermark from khala.sync_stream_events
         where topic = ${topic} and inserted_at < ${before}
           -- never past a sink's outbox cursor: rows it has not been delivered stay (outbox.md)
           and watermark <= coalesce(
             (select min(c.watermark) from khala.sync_outbox_cursors c where c.topic = ${topic}),
             watermark
           )
         order by inserted_at desc
         limit 1
      `.pipe(
        mapStorageError,
        Effect.flatMap(decodeWatermark),
        Effect.map((rows) => Option.fromNullable(rows[0]?.watermark))
      )
  })
})

export const layer: Layer.Layer<RetentionStore, never, SqlClient.SqlClient> = Layer.effect(RetentionStore, make)
