import { Chunk, Effect, HashMap, Layer, Option } from "effect"
import type { Document } from "../services/Documents.js"
import type { PublishOutcome } from "../services/Publisher.js"
import { Appended, appendedHeads, NotNewer, Publisher } from "../services/Publisher.js"
import { Wakeups } from "../services/Wakeups.js"
import type { MemoryState } from "./MemoryStore.js"
import { documentId, MemoryStore } from "./MemoryStore.js"
import type { PreparedUpdate } from "./PreparedUpdate.js"
import { prepareAll, prepareUpdate } from "./PreparedUpdate.js"
import { getTopic } from "./SequencerMemory.js"

/** The memory twin of `khala.publish_hashed`: version check, dense allocation, journal row, read-model upsert. */
const applyUpdate = (state: MemoryState, update: PreparedUpdate) =>
  Effect.map(getTopic(state, update.topic), (topic): readonly [PublishOutcome, MemoryState] => {
    const id = documentId(update.topic, update.docKey)
    const stored = HashMap.get(state.documents, id)
    if (Option.isSome(stored) && stored.value.docVersion >= update.docVersion) {
      return [NotNewer(update.topic), state]
    }
    const watermark = topic.head + 1
    const now = new Date()
    const pointer = update.pointer === true || topic.registration.pointerMode === true
    const document: Document = {
      topic: update.topic,
      docKey: update.docKey,
      docVersion: update.docVersion,
      orgId: update.orgId,
      payload: JSON.parse(update.canonicalPayload),
      payloadHash: update.payloadHash,
      watermark,
      updatedAt: now
    }
    return [Appended(update.topic, watermark), {
      topics: HashMap.set(state.topics, update.topic, {
        ...topic,
        head: watermark,
        events: Chunk.append(topic.events, {
          topic: update.topic,
          watermark,
          docKey: update.docKey,
          docVersion: update.docVersion,
          orgId: update.orgId,
          payload: pointer ? undefined : document.payload,
          pointer,
          payloadHash: update.payloadHash,
          insertedAt: now
        })
      }),
      documents: HashMap.set(state.documents, id, document)
    }]
  })

export const make = Effect.gen(function*() {
  const store = yield* MemoryStore

  const applyAll = (updates: ReadonlyArray<PreparedUpdate>) =>
    store.write((initial) =>
      Effect.reduce(
        updates,
        [[] as Array<PublishOutcome>, initial] as const,
        ([outcomes, state], update) =>
          Effect.map(applyUpdate(state, update), ([outcome, next]) => {
            outcomes.push(outcome)
            return [outcomes, next] as const
          })
      )
    )

  const wakeups = yield* Effect.serviceOption(Wakeups)
  const signal = (outcomes: ReadonlyArray<PublishOutcome>) =>
    Option.match(wakeups, {
      onNone: () => Effect.void,
      onSome: (wakeups) =>
        Effect.flatMap(store.inTransaction, (inTransaction) =>
          inTransaction ? Effect.void : wakeups.committed(appendedHeads(outcomes)))
    })

  return Publisher.of({
    publish: (update) =>
      prepareUpdate(update).pipe(
        Effect.flatMap((prepared) => applyAll([prepared])),
        Effect.tap(signal),
        Effect.map((outcomes) => outcomes[0]!)
      ),
    publishAll: (updates) => Effect.flatMap(prepareAll(updates), applyAll).pipe(Effect.tap(signal))
  })
})

export const layerMemory = Layer.effect(Publisher, make)
