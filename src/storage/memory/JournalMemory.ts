import { Chunk, Effect, HashMap, Layer } from "effect"
import { defaultMaxPayloadBytes } from "../../protocol/UpdateBatch.js"
import { checkLimit, checkWatermark } from "../../services/Arguments.js"
import type { JournalPage, JournalRow } from "../../services/Journal.js"
import { defaultReadMaxBytes, Journal, StaleCursor } from "../../services/Journal.js"
import { MemoryStore, payloadBytesOf } from "./MemoryStore.js"
import { getTopic } from "./SequencerMemory.js"

/** Index of the first row with `watermark > after` in rows sorted by watermark. */
const firstAfter = (events: ReadonlyArray<JournalRow>, after: number) => {
  let low = 0
  let high = events.length
  while (low < high) {
    const mid = (low + high) >>> 1
    if (events[mid]!.watermark <= after) low = mid + 1
    else high = mid
  }
  return low
}

export const make = Effect.gen(function*() {
  const store = yield* MemoryStore

  return Journal.of({
    // The same bounds as the Postgres read: rows in (after, after + limit], a byte budget, payloads over the
    // per-update limit left out, and holes stepped over.
    read: (topic, after, limit, options) =>
      Effect.zipRight(checkWatermark("after", after), checkLimit(limit)).pipe(
        Effect.zipRight(store.read),
        Effect.flatMap((state) => getTopic(state, topic)),
        Effect.filterOrFail(
          (t) => after >= t.retentionFloor,
          (t) => new StaleCursor({ topic, after, retentionFloor: t.retentionFloor })
        ),
        Effect.map((t): JournalPage => {
          const maxPayloadBytes = options?.maxPayloadBytes ?? defaultMaxPayloadBytes
          const maxBytes = options?.maxBytes ?? defaultReadMaxBytes
          const rows: Array<JournalRow> = []
          let bytes = 0
          let cut = false
          // an array once (the chunk keeps it): indexing a chunk built by appends walks its tree
          const events = Chunk.toReadonlyArray(t.events)
          const start = firstAfter(events, after)
          for (let i = start; i < events.length && rows.length < limit; i++) {
            const row = events[i]!
            if (row.watermark > after + limit) break
            const payloadBytes = payloadBytesOf.get(row) ?? 0
            const oversize = !row.deleted && !row.pointer && payloadBytes > maxPayloadBytes
            const counted = oversize ? 0 : payloadBytes
            // as in Postgres: a row is taken while the bytes before it are under the budget
            if (bytes >= maxBytes) {
              cut = true
              break
            }
            bytes += counted
            rows.push(oversize ? { ...row, payload: undefined, pointer: true } : row)
          }
          let through = cut ? rows[rows.length - 1]!.watermark : Math.min(after + limit, t.head)
          if (rows.length === 0 && through < t.head) {
            const next = events[start]?.watermark
            through = next === undefined ? t.head : Math.min(next - 1, t.head)
          }
          return { rows, through, head: t.head, retentionFloor: t.retentionFloor, epoch: t.epoch }
        })
      ),
    prune: (topic, through, options) =>
      Effect.zipRight(
        checkWatermark("through", through),
        store.write((state) =>
          Effect.map(getTopic(state, topic), (t) => {
            const floor = Math.max(t.retentionFloor, Math.min(through, t.head))
            const cut = firstAfter(Chunk.toReadonlyArray(t.events), floor)
            const documents = HashMap.filter(
              state.documents,
              (d) => !(d.topic === topic && d.deleted && d.watermark <= floor)
            )
            return [
              { topic, deleted: cut, retentionFloor: floor },
              {
                ...state,
                documents,
                topics: HashMap.set(state.topics, topic, {
                  ...t,
                  retentionFloor: floor,
                  events: Chunk.drop(t.events, cut)
                })
              }
            ] as const
          })
        ).pipe(
          // the memory journal deletes in one batch
          Effect.tap((result) =>
            result.deleted > 0 && options?.onBatch !== undefined ? options.onBatch(result.deleted) : Effect.void
          )
        )
      )
  })
})

export const layerMemory = Layer.effect(Journal, make)
