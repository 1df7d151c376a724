import type { ConfigError } from "effect"
import { Config, Deferred, Effect, FiberId, Layer, Schedule } from "effect"
import { HeadSignals } from "../services/HeadSignals.js"
import * as Metrics from "../services/Metrics.js"
import { Sequencer } from "../services/Sequencer.js"
import { integerWithin } from "../services/Settings.js"
import type { TopicHead, WatchedTopic } from "../services/Wakeups.js"
import { Wakeups } from "../services/Wakeups.js"
import { backoff, makeOutage, supervised } from "./Supervised.js"

export const WakeupsConfig = Config.all({
  pollInterval: integerWithin("KHALA_POLL_INTERVAL_MS", 1, 60_000).pipe(
    Config.withDefault(10),
    Config.withDescription("How often each process polls the heads of the topics it serves, in milliseconds")
  )
})

/** How long hints of this process's commits are gathered into one signal to other processes. */
const signalCoalescing = "5 millis"

/** One watcher's hints: the highest head hinted since its last wait, and the wait in progress. */
interface Cell {
  hinted: number
  waiting: { readonly above: number; readonly wake: Deferred.Deferred<void> } | undefined
}

const hint = (cell: Cell, head: number) => {
  if (head > cell.hinted) cell.hinted = head
  if (cell.waiting !== undefined && cell.hinted > cell.waiting.above) {
    const { wake } = cell.waiting
    cell.waiting = undefined
    cell.hinted = 0
    Deferred.unsafeDone(wake, Effect.void)
  }
}

/**
 * Wake-ups of one process: its own commits wake its tails at once and are hinted to other processes (coalesced);
 * their hints, and a poll of the watched topics' heads, wake it for everything else.
 */
export const make = Effect.gen(function*() {
  const config = yield* WakeupsConfig
  const sequencer = yield* Sequencer
  const signals = yield* HeadSignals
  const watched = new Map<string, Set<Cell>>()

  const bump = (topic: string, head: number) => {
    const cells = watched.get(topic)
    if (cells !== undefined) { for (const cell of cells) hint(cell, head) }
  }

  // The poll: one small indexed query per interval, and none while nothing is watched. While the database fails it
  // backs off, and says so once rather than once per attempt.
  const outage = makeOutage("polling topic heads")
  const poll = Effect.suspend(() => {
    const topics = Array.from(watched.keys())
    if (topics.length === 0) return Effect.void
    Metrics.add(Metrics.headPolls)
    return Effect.map(sequencer.positions(topics), (positions) => {
      for (const p of positions) bump(p.topic, p.head)
    })
  })
  yield* Effect.gen(function*() {
    const failing = yield* Schedule.driver(backoff("2 seconds"))
    while (true) {
      const polled = yield* poll.pipe(
        Effect.zipRight(outage.recovered),
        Effect.as(true),
        Effect.catchAll((error) => Effect.as(outage.failed(error), false))
      )
      if (polled) {
        yield* failing.reset
        yield* Effect.sleep(config.pollInterval)
      } else {
        yield* Effect.ignore(failing.next(undefined))
      }
    }
  }).pipe((loop) => supervised("the heads poll", loop), Effect.forkScoped)

  const pending = new Map<string, number>()
  const hintsPending = yield* Effect.makeLatch(false)

  // Runs in this layer's scope, never in a caller's transaction (design.md §4).
  yield* Effect.gen(function*() {
    yield* hintsPending.await
    yield* hintsPending.close
    const heads = Array.from(pending, ([topic, head]): TopicHead => ({ topic, head }))
    pending.clear()
    yield* signals.send(heads)
    yield* Effect.sleep(signalCoalescing)
  }).pipe(Effect.forever, (loop) => supervised("sending head hints", loop), Effect.forkScoped)

  yield* signals.receive({
    onHeads: (heads) => {
      for (const { head, topic } of heads) bump(topic, head)
    },
    // hints sent while the connection was down are lost: read every watched head now
    onConnected: Effect.catchAll(poll, (error) => outage.failed(error))
  }).pipe(Effect.zipRight(Effect.never), (loop) => supervised("receiving head hints", loop), Effect.forkScoped)

  const watch = (topic: string) =>
    Effect.map(
      Effect.acquireRelease(
        Effect.sync(() => {
          const cell: Cell = { hinted: 0, waiting: undefined }
          const cells = watched.get(topic) ?? new Set()
          cells.add(cell)
          watched.set(topic, cells)
          return cell
        }),
        (cell) =>
          Effect.sync(() => {
            const cells = watched.get(topic)
            cells?.delete(cell)
            if (cells?.size === 0) watched.delete(topic)
          })
      ),
      (cell): WatchedTopic => ({
        beyond: (watermark) =>
          Effect.suspend(() => {
            if (cell.hinted > watermark) {
              cell.hinted = 0
              return Effect.void
            }
            const wake = Deferred.unsafeMake<void>(FiberId.none)
            cell.waiting = { above: watermark, wake }
            return Deferred.await(wake).pipe(Effect.onInterrupt(() => Effect.sync(() => (cell.waiting = undefined))))
          })
      })
    )

  const committed = (heads: ReadonlyArray<TopicHead>): Effect.Effect<void> =>
    Effect.gen(function*() {
      for (const h of heads) bump(h.topic, h.head)
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
