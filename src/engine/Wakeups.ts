import type { ConfigError } from "effect"
import { Config, Effect, Layer, Option, Runtime, Schedule, Stream, SubscriptionRef } from "effect"
import { integerWithin } from "../services/ConfigInteger.js"
import { HeadSignals } from "../services/HeadSignals.js"
import { Sequencer } from "../services/Sequencer.js"
import type { TopicHead, WatchedTopic } from "../services/Wakeups.js"
import { Wakeups } from "../services/Wakeups.js"

export const WakeupsConfig = Config.all({
  pollInterval: integerWithin("KHALA_POLL_INTERVAL_MS", 1, 60_000).pipe(
    Config.withDefault(10),
    Config.withDescription("How often each process polls the heads of the topics it serves, in milliseconds")
  )
})

/** How long hints of this process's commits are gathered into one signal to other processes. */
const signalCoalescing = "5 millis"

interface Watched {
  readonly head: SubscriptionRef.SubscriptionRef<number>
  watchers: number
}

/**
 * Wake-ups of one process: its own commits wake its tails at once and are hinted to other processes (coalesced);
 * their hints, and a poll of the watched topics' heads, wake it for everything else.
 */
export const make = Effect.gen(function*() {
  const config = yield* WakeupsConfig
  const sequencer = yield* Sequencer
  const signals = yield* HeadSignals
  const watched = new Map<string, Watched>()

  const bump = (topic: string, head: number) => {
    const entry = watched.get(topic)
    return entry === undefined
      ? Effect.void
      : SubscriptionRef.update(entry.head, (known) => Math.max(known, head))
  }

  // The poll: one small indexed query per interval, and none while nothing is watched.
  const poll = Effect.suspend(() => {
    const topics = Array.from(watched.keys())
    if (topics.length === 0) return Effect.void
    return sequencer.positions(topics).pipe(
      Effect.flatMap((positions) => Effect.forEach(positions, (p) => bump(p.topic, p.head), { discard: true })),
      Effect.catchAll((error) => Effect.logWarning("polling topic heads failed", error))
    )
  })
  yield* poll.pipe(Effect.repeat(Schedule.spaced(config.pollInterval)), Effect.forkScoped)

  const pending = new Map<string, number>()
  const hintsPending = yield* Effect.makeLatch(false)

  // Runs in this layer's scope, never in a caller's transaction (SPEC §3).
  yield* Effect.gen(function*() {
    yield* hintsPending.await
    yield* hintsPending.close
    const heads = Array.from(pending, ([topic, head]): TopicHead => ({ topic, head }))
    pending.clear()
    yield* signals.send(heads)
    yield* Effect.sleep(signalCoalescing)
  }).pipe(Effect.forever, Effect.forkScoped)

  const runtime = yield* Effect.runtime<never>()
  yield* signals.receive({
    onHeads: (heads) => {
      for (const { head, topic } of heads) {
        if (watched.has(topic)) Runtime.runFork(runtime)(bump(topic, head))
      }
    },
    // hints sent while the connection was down are lost: read every watched head now
    onConnected: poll
  }).pipe(Effect.forkScoped)

  const watch = (topic: string) =>
    Effect.acquireRelease(
      Effect.gen(function*() {
        const existing = watched.get(topic)
        if (existing !== undefined) {
          existing.watchers++
          return existing
        }
        const entry: Watched = { head: yield* SubscriptionRef.make(0), watchers: 1 }
        watched.set(topic, entry)
        return entry
      }),
      (entry) =>
        Effect.sync(() => {
          entry.watchers--
          if (entry.watchers === 0) watched.delete(topic)
        })
    ).pipe(Effect.map((entry): WatchedTopic => ({
      head: SubscriptionRef.get(entry.head),
      beyond: (watermark) =>
        entry.head.changes.pipe(
          Stream.filter((head) => head > watermark),
          Stream.runHead,
          Effect.map(Option.getOrElse(() => watermark))
        )
    })))

  const committed = (heads: ReadonlyArray<TopicHead>): Effect.Effect<void> =>
    Effect.gen(function*() {
      yield* Effect.forEach(heads, (h) => bump(h.topic, h.head), { discard: true })
      if (heads.length > 0) {
        for (const h of heads) pending.set(h.topic, Math.max(pending.get(h.topic) ?? 0, h.head))
        yield* hintsPending.open
      }
    })

  return Wakeups.of({ committed, watch })
})

/** Wake-ups over the sequencer's heads and the hints of other processes. */
export const layer: Layer.Layer<Wakeups, ConfigError.ConfigError, Sequencer | HeadSignals> = Layer.scoped(
  Wakeups,
  make
)
