import { Effect, HashMap, Layer, Option } from "effect"
import type { OutboxCursor } from "../../services/OutboxStore.js"
import { OutboxStore } from "../../services/OutboxStore.js"
import { MemoryStore, outboxCursorId } from "./MemoryStore.js"
import { getTopic } from "./SequencerMemory.js"

/** The outbox cursors in the memory store, with the Postgres semantics (one forwarder per sink: one process). */
export const make = Effect.gen(function*() {
  const store = yield* MemoryStore
  const forwarding = yield* Effect.makeSemaphore(1)

  return OutboxStore.of({
    cursor: (sink, topic) =>
      store.write((state) =>
        Effect.map(getTopic(state, topic), (t) => {
          const id = outboxCursorId(sink, topic)
          return Option.match(HashMap.get(state.outboxCursors, id), {
            onSome: (watermark) => [watermark, state] as const,
            onNone: () =>
              [t.retentionFloor, {
                ...state,
                outboxCursors: HashMap.set(state.outboxCursors, id, t.retentionFloor)
              }] as const
          })
        })
      ),
    advance: (sink, topic, watermark) =>
      store.write((state) => {
        const id = outboxCursorId(sink, topic)
        const current = HashMap.get(state.outboxCursors, id)
        if (Option.isNone(current) || current.value >= watermark) return Effect.succeed([undefined, state] as const)
        return Effect.succeed([undefined, { ...state, outboxCursors: HashMap.set(state.outboxCursors, id, watermark) }])
      }),
    cursors: Effect.map(store.read, (state) =>
      Array.from(state.outboxCursors, ([id, watermark]): OutboxCursor => {
        const [sink = "", topic = ""] = id.split("\u0000")
        return { sink, topic, watermark }
      }).sort((a, b) => a.sink.localeCompare(b.sink) || a.topic.localeCompare(b.topic))),
    drop: (sink) =>
      store.write((state) => {
        const mine = Array.from(HashMap.keys(state.outboxCursors)).filter((id) => id.startsWith(`${sink}\u0000`))
        return Effect.succeed(
          [mine.length, { ...state, outboxCursors: HashMap.removeMany(state.outboxCursors, mine) }] as const
        )
      }),
    exclusive: (_sink, effect) => forwarding.withPermitsIfAvailable(1)(effect)
  })
})

export const layerMemory: Layer.Layer<OutboxStore, never, MemoryStore> = Layer.effect(OutboxStore, make)
