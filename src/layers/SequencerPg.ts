import { SqlClient } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { Sequencer } from "../services/Sequencer.js"
import type { TopicRegistration } from "../services/Topic.js"
import { classify, mapStorageError } from "./PgErrors.js"
import { Int8 } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

const PositionRow = Schema.Struct({ topic: Schema.String, head: Int8, retention_floor: Int8 })
const RegistrationRow = Schema.Struct({
  topic: Schema.String,
  retention_class: Schema.String,
  pointer_mode: Schema.Boolean
})
const HeadRow = Schema.Struct({ head: Int8 })

export const make = Effect.gen(function*() {
  const sql = yield* SqlClient.SqlClient
  const decodePositions = decodeRows(PositionRow)
  const decodeRegistrations = decodeRows(RegistrationRow)
  const decodeHead = decodeRows(HeadRow)

  const register = (topics: ReadonlyArray<TopicRegistration>) =>
    topics.length === 0 ? Effect.void : sql`
      insert into khala.sync_topic_sequences ${
      sql.insert(topics.map((t) => ({
        topic: t.topic,
        retention_class: t.retentionClass,
        pointer_mode: t.pointerMode ?? false
      })))
    }
      on conflict (topic) do update
         set retention_class = excluded.retention_class, pointer_mode = excluded.pointer_mode
       where (khala.sync_topic_sequences.retention_class, khala.sync_topic_sequences.pointer_mode)
             is distinct from (excluded.retention_class, excluded.pointer_mode)
    `.pipe(Effect.asVoid, mapStorageError)

  return Sequencer.of({
    register,
    allocate: (topic, count) =>
      sql`select khala.allocate_watermarks(${topic}, ${count}) as head`.pipe(
        Effect.mapError(classify(topic)),
        // a count below 1 is a bug of the caller, not a condition to handle
        Effect.catchTag("InvalidUpdate", Effect.die),
        Effect.flatMap(decodeHead),
        Effect.map((rows) => rows[0]!.head)
      ),
    positions: (topics) =>
      topics.length === 0 ? Effect.succeed([]) : sql`
        select topic, next_watermark as head, retention_floor
          from khala.sync_topic_sequences
         where ${sql.in("topic", topics)}
      `.pipe(mapStorageError, Effect.flatMap(decodePositions), Effect.map((rows) =>
        rows.map((r) => ({ topic: r.topic, head: r.head, retentionFloor: r.retention_floor }))
      )),
    topics: sql`select topic, retention_class, pointer_mode from khala.sync_topic_sequences order by topic`.pipe(
      mapStorageError,
      Effect.flatMap(decodeRegistrations),
      Effect.map((rows) =>
        rows.map((r): TopicRegistration => ({
          topic: r.topic,
          retentionClass: r.retention_class,
          pointerMode: r.pointer_mode
        }))
      )
    )
  })
})

export const layer = Layer.effect(Sequencer, make)
