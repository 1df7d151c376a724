import { SqlClient } from "@effect/sql"
import { Effect, Layer, Schema } from "effect"
import { Sequencer } from "../../services/Sequencer.js"
import type { TopicRegistration } from "../../services/Topic.js"
import { classify, mapStorageError, toStorageError } from "./PgErrors.js"
import { Int8 } from "./PgRows.js"
import { decodeRows } from "./SqlDecode.js"

const PositionRow = Schema.Struct({ topic: Schema.String, head: Int8, retention_floor: Int8, epoch: Schema.String })
const RegistrationRow = Schema.Struct({
  topic: Schema.String,
  retention_class: Schema.String,
  pointer_mode: Schema.Boolean
})
const EpochRow = Schema.Struct({ epoch: Schema.String })

export const make = Effect.gen(function*() {
  // a runtime's client may transform result names; Khala reads its own columns as named
  const sql = (yield* SqlClient.SqlClient).withoutTransforms()
  const decodePositions = decodeRows(PositionRow)
  const decodeRegistrations = decodeRows(RegistrationRow)
  const decodeEpoch = decodeRows(EpochRow)

  // Runs at every start, beside live publishers: it must take no row lock when nothing changes (an upsert would lock
  // every existing row, in catalog order, and deadlock with publish_batch, which locks in sorted order).
  const register = (topics: ReadonlyArray<TopicRegistration>) =>
    Effect.gen(function*() {
      if (topics.length === 0) return
      yield* sql`
        insert into khala.sync_topic_sequences ${
        sql.insert(topics.map((t) => ({
          topic: t.topic,
          retention_class: t.retentionClass,
          pointer_mode: t.pointerMode ?? false
        })))
      }
        on conflict (topic) do nothing
      `
      const stored = yield* sql`
        select topic, retention_class, pointer_mode from khala.sync_topic_sequences where ${
        sql.in("topic", topics.map((t) => t.topic))
      }`.pipe(Effect.flatMap(decodeRegistrations))
      const changed = topics.flatMap((t) => {
        const current = stored.find((row) => row.topic === t.topic)
        if (current === undefined) return []
        // pointer mode set by an operator stays unless the registration says otherwise
        const pointerMode = t.pointerMode ?? current.pointer_mode
        return current.retention_class === t.retentionClass && current.pointer_mode === pointerMode
          ? []
          : [{ topic: t.topic, retentionClass: t.retentionClass, pointerMode }]
      })
      // Registration runs outside any transaction, so each update commits on its own and holds one topic's row at a
      // time: there is no lock order to keep.
      for (const t of changed) {
        yield* sql`
          update khala.sync_topic_sequences
             set retention_class = ${t.retentionClass}, pointer_mode = ${t.pointerMode}
           where topic = ${t.topic}`
      }
    }).pipe(Effect.catchTag("SqlError", (error) => Effect.fail(toStorageError(error))))

  return Sequencer.of({
    register,
    positions: (topics) =>
      topics.length === 0 ? Effect.succeed([]) : sql`
        select topic, next_watermark as head, retention_floor, epoch
          from khala.sync_topic_sequences
         where ${sql.in("topic", topics)}
      `.pipe(
        mapStorageError,
        Effect.flatMap(decodePositions),
        Effect.map((rows) =>
          rows.map((r) => ({ topic: r.topic, head: r.head, retentionFloor: r.retention_floor, epoch: r.epoch }))
        )
      ),
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
    ),
    resetTopic: (topic) =>
      sql`select khala.reset_topic(${topic}) as epoch`.pipe(
        Effect.mapError(classify(topic)),
        Effect.catchTag("InvalidUpdate", Effect.die),
        Effect.flatMap(decodeEpoch),
        Effect.map((rows) => rows[0]!.epoch)
      )
  })
})

export const layer = Layer.effect(Sequencer, make)
