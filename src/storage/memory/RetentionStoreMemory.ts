import { Chunk, Effect, Layer, Option } from "effect"
import { RetentionStore } from "../../services/RetentionStore.js"
import { MemoryStore } from "./MemoryStore.js"
import { getTopic } from "./SequencerMemory.js"

export const make = Effect.gen(function*() {
  const store = yield* MemoryStore
  // one process: runs only exclude each other
  const running = yield* Effect.makeSemaphore(1)

  return RetentionStore.of({
    exclusive: (effect) => running.withPermitsIfAvailable(1)(effect),
    watermarkBefore: (topic, before) =>
      Effect.flatMap(store.read, (state) =>
        Effect.map(getTopic(state, topic), (t) => {
          // never past a sink's outbox cursor (outbox.md)
          let cap = Number.POSITIVE_INFINITY
          for (const [id, watermark] of state.outboxCursors) {
            if (id.endsWith(`\u0000${topic}`)) cap = Math.min(cap, watermark)
          }
          let found: number | undefined
          for (const row of Chunk.toReadonlyArray(t.events)) {
            if (row.insertedAt.getTime() < before.getTime() && row.watermark <= cap) found = row.watermark
          }
          return Option.fromNullable(found)
        })).pipe(Effect.catchTag("UnknownTopic", () => Effect.succeed(Option.none())))
  })
})

export const layerMemory: Layer.Layer<RetentionStore, never, MemoryStore> = Layer.effect(RetentionStore, make)
