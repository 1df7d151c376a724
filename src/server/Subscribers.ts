/**
 * The topic subscriptions this node's sockets hold, counted by topic while they run, for `GET /statusz`. The
 * `khala_subscriptions` gauge counts the same, but in the process-wide metric registry (shared by every server of the
 * process, and off under `KHALA_METRICS=false`): this count is the node's own.
 */
import { Context, Effect, Layer } from "effect"

/** The node's subscriptions by topic. */
export class Subscribers extends Context.Tag("khala/Subscribers")<Subscribers, {
  /** Counts one subscription to `topic` (its wire name) while `effect` runs. */
  readonly hold: (topic: string) => <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** The subscriptions held now, by topic; a topic without one is absent. */
  readonly byTopic: Effect.Effect<ReadonlyMap<string, number>>
}>() {}

/** Makes the count of one node. */
export const make: Effect.Effect<Subscribers["Type"]> = Effect.sync(() => {
  const counts = new Map<string, number>()
  const add = (topic: string, delta: number) => {
    const count = (counts.get(topic) ?? 0) + delta
    if (count === 0) counts.delete(topic)
    else counts.set(topic, count)
  }
  return Subscribers.of({
    hold: (topic) => (effect) =>
      Effect.acquireUseRelease(
        Effect.sync(() => add(topic, 1)),
        () => effect,
        () => Effect.sync(() => add(topic, -1))
      ),
    byTopic: Effect.sync(() => new Map(counts))
  })
})

/** The count of one node. */
export const layer: Layer.Layer<Subscribers> = Layer.effect(Subscribers, make)
