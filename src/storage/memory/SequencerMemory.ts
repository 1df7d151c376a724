import { Chunk, Effect, HashMap, Layer, Option } from "effect"
import { checkCount } from "../../services/Arguments.js"
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
                      onNone: (): MemoryTopic => ({ registration, head: 0, retentionFloor: 0, events: Chunk.empty() }),
                      onSome: (existing): MemoryTopic => ({ ...existing, registration })
                    })
                  ),
                state.topics
              )
            }
          ] as const
        )
      ),
    // The memory store runs one writer at a time, so a reservation can never interleave with another; the caller
    // appends the rows it reserved within the same write.
    allocate: (topic, count) =>
      Effect.zipRight(
        checkCount(count),
        store.write((state) =>
          Effect.map(getTopic(state, topic), (current) => {
            const head = current.head + count
            return [head, { ...state, topics: HashMap.set(state.topics, topic, { ...current, head }) }] as const
          })
        )
      ),
    positions: (topics) =>
      Effect.map(store.read, (state) =>
        topics.flatMap((topic) =>
          Option.match(HashMap.get(state.topics, topic), {
            onNone: () => [],
            onSome: (t): Array<TopicPosition> => [{ topic, head: t.head, retentionFloor: t.retentionFloor }]
          })
        )),
    topics: Effect.map(store.read, (state) => Array.from(HashMap.values(state.topics), (t) => t.registration))
  })
})

export const layerMemory = Layer.effect(Sequencer, make)
