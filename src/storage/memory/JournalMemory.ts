import { Chunk, Effect, HashMap, Layer } from "effect"
import { checkLimit, checkWatermark } from "../../services/Arguments.js"
import type { JournalRow } from "../../services/Journal.js"
import { Journal, StaleCursor } from "../../services/Journal.js"
import { MemoryStore } from "./MemoryStore.js"
import { getTopic } from "./SequencerMemory.js"

/** Index of the first row with `watermark > after` in a chunk sorted by watermark. */
const firstAfter = (events: Chunk.Chunk<JournalRow>, after: number) => {
  let low = 0
  let high = Chunk.size(events)
  while (low < high) {
    const mid = (low + high) >>> 1
    if (Chunk.unsafeGet(events, mid).watermark <= after) low = mid + 1
    else high = mid
  }
  return low
}

export const make = Effect.gen(function*() {
  const store = yield* MemoryStore

  return Journal.of({
    read: (topic, after, limit) =>
      Effect.zipRight(checkWatermark("after", after), checkLimit(limit)).pipe(
        Effect.zipRight(store.read),
        Effect.flatMap((state) => getTopic(state, topic)),
        Effect.filterOrFail(
          (t) => after >= t.retentionFloor,
          (t) => new StaleCursor({ topic, after, retentionFloor: t.retentionFloor })
        ),
        Effect.map((t) => {
          const start = firstAfter(t.events, after)
          return {
            rows: Chunk.toReadonlyArray(Chunk.take(Chunk.drop(t.events, start), limit)),
            head: t.head,
            retentionFloor: t.retentionFloor
          }
        })
      ),
    prune: (topic, through) =>
      Effect.zipRight(
        checkWatermark("through", through),
        store.write((state) =>
          Effect.map(getTopic(state, topic), (t) => {
            const floor = Math.max(t.retentionFloor, Math.min(through, t.head))
            const cut = firstAfter(t.events, floor)
            return [
              { topic, deleted: cut, retentionFloor: floor },
              {
                ...state,
                topics: HashMap.set(state.topics, topic, {
                  ...t,
                  retentionFloor: floor,
                  events: Chunk.drop(t.events, cut)
                })
              }
            ] as const
          })
        )
      )
  })
})

export const layerMemory = Layer.effect(Journal, make)
