import { Chunk, Effect, HashMap, Layer, Option } from "effect"
import { Sequencer } from "../../services/Sequencer.js"
import type { TopicPosition } from "../../services/Topic.js"
import { UnknownTopic } from "../../services/Topic.js"
import type { MemoryState, MemoryTopic } from "./MemoryStore.js"
import { MemoryStore } from "./MemoryStore.js"

export const getTopic = (state: MemoryState, topic: string): Effect.Effect<MemoryTopic, UnknownTopic> =>
  Option.match(HashMap.get(state.topics, topic), {
    onNone: () => Effect.fail(new UnknownTopic({ topic })),
    onSome: Effect.succeed
  })

export const make = Effect.gen(function*() {
  const store = yield* MemoryStore

  return Sequencer.of({
    register: (registrations) =>
      store.write((state) =>
        Effect.succeed(
          [
            undefined,
            {
              ...state,
              topics: registrations.reduce(
                (topics, registration) =>
                  HashMap.set(
                    topics,
                    registration.topic,
                    Option.match(HashMap.get(topics, registration.topic), {
                      onNone: (): MemoryTopic => ({
                        registration,
                        head: 0,
                        retentionFloor: 0,
                        epoch: crypto.randomUUID(),
                        events: Chunk.empty()
                      }),
                      onSome: (existing): MemoryTopic => ({ ...existing, registration })
                    })
                  ),
                state.topics
              )
            }
          ] as const
        )
      ),
    positions: (topics) =>
      Effect.map(store.read, (state) =>
        topics.flatMap((topic) =>
          Option.match(HashMap.get(state.topics, topic), {
            onNone: () => [],
            onSome: (
              t
            ): Array<TopicPosition> => [{ topic, head: t.head, retentionFloor: t.retentionFloor, epoch: t.epoch }]
          })
        )),
    topics: Effect.map(store.read, (state) => Array.from(HashMap.values(state.topics), (t) => t.registration)),
    resetTopic: (topic) =>
      store.write((state) =>
        Effect.map(getTopic(state, topic), (t) => {
          const epoch = crypto.randomUUID()
          const reset: MemoryTopic = { ...t, retentionFloor: t.head, epoch, events: Chunk.empty() }
          return [epoch, { ...state, topics: HashMap.set(state.topics, topic, reset) }] as const
        })
      )
  })
})

export const layerMemory = Layer.effect(Sequencer, make)
