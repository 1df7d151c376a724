import type { Duration, Scope } from "effect"
import { Effect, Exit } from "effect"
import type { Batch } from "../services/Hub.js"
import type { Journal, JournalRow, ReadOptions } from "../services/Journal.js"
import { StaleCursor } from "../services/Journal.js"
import * as Metrics from "../services/Metrics.js"
import type { Sequencer } from "../services/Sequencer.js"
import type { StorageError } from "../services/StorageError.js"
import { UnknownTopic } from "../services/Topic.js"
import * as Tracing from "../services/Tracing.js"
import type { Wakeups } from "../services/Wakeups.js"
import type { View } from "./Audience.js"
import { visibleRows } from "./Audience.js"
import type { Outage } from "./Supervised.js"
import { retryStorage, supervised } from "./Supervised.js"

/**
 * A subscriber as its topic's tail sees it. While it is live, the tail hands it each read; when it cannot take one,
 * it falls behind and reads the journal by itself until it catches up again.
 */
export interface Sink {
  readonly view: View
  /** The watermark through which this subscriber has been handed everything (I4). */
  sent: number
  /** Takes a live batch at once, or answers false; it runs in the tail, between the other subscribers. */
  readonly deliver: (batch: Batch) => boolean
  /** The tail stopped handing this subscriber batches: it must catch up from the journal. */
  readonly fellBehind: () => void
}

/** One topic's tail in this process: it reads each appended row once and hands it to every live subscriber. */
export interface Tail {
  /** The watermark through which the tail has read. */
  readonly lastRead: () => number
  /** The highest head the tail has seen. */
  readonly knownHead: () => number
  /**
   * Makes the sink live, if the tail has not read past what the sink was sent: from then on the tail hands it every
   * read. Otherwise answers false, and the sink reads the journal on to where the tail is.
   */
  readonly goLive: (sink: Sink) => boolean
  readonly leave: (sink: Sink) => void
}

export interface TailOptions {
  readonly journal: Journal["Type"]
  readonly sequencer: Sequencer["Type"]
  readonly wakeups: Wakeups["Type"]
  readonly page: number
  readonly coalesce: Duration.DurationInput
  readonly read: ReadOptions
  readonly outage: Outage
}

const tailRead = Metrics.sourceLabel("tail")

/**
 * Opens a topic's tail in the scope. It starts at the topic's head (subscribers replay what precedes it from the
 * journal themselves) and reads whenever a hint says the topic moved past what it read.
 */
export const open = (
  topic: string,
  options: TailOptions
): Effect.Effect<Tail, UnknownTopic | StorageError, Scope.Scope> =>
  Effect.gen(function*() {
    const watched = yield* options.wakeups.watch(topic)
    const tracer = yield* Effect.tracer
    const position = (yield* options.sequencer.positions([topic]))[0]
    if (position === undefined) return yield* new UnknownTopic({ topic })
    let lastRead = position.head
    let knownHead = position.head
    const live = new Set<Sink>()

    const drop = (sink: Sink) => {
      live.delete(sink)
      sink.fellBehind()
    }

    /**
     * Hands the read `(from, through]` to every live subscriber, synchronously. A subscriber exactly at `from` gets
     * the batch it shares with every other one that sees the same rows, so that sessions serialize it once; one ahead
     * of `from` (it went live while the read was in flight) gets the part it lacks; one that refuses falls behind, and
     * nobody waits for it.
     */
    const fanOut = (from: number, through: number, rows: ReadonlyArray<JournalRow>, head: number) => {
      const shared = new Map<string, Batch>()
      const batchOf = (view: View, updates: ReadonlyArray<JournalRow>): Batch => ({
        topic,
        updates: visibleRows(view, updates),
        through,
        head: Math.max(head, through),
        replayComplete: true
      })
      for (const sink of live) {
        if (sink.sent >= through) continue
        if (sink.sent < from) {
          drop(sink)
          continue
        }
        let batch: Batch
        if (sink.sent === from) {
          batch = shared.get(sink.view.key) ?? batchOf(sink.view, rows)
          shared.set(sink.view.key, batch)
        } else {
          batch = batchOf(sink.view, rows.filter((row) => row.watermark > sink.sent))
        }
        let taken: boolean
        try {
          taken = sink.deliver(batch)
        } catch {
          taken = false
        }
        if (taken) sink.sent = through
        else drop(sink)
      }
    }

    // Reads until the head it saw: each appended row once per process, whatever the number of subscribers.
    const readNew = Effect.gen(function*() {
      while (true) {
        const from = lastRead
        const readStart = Tracing.isTracing() ? Tracing.nowNanos() : 0n
        const page = yield* retryStorage(options.journal.read(topic, from, options.page, options.read), options.outage)
          .pipe(Effect.catchTag("StaleCursor", (stale) => Effect.succeed(stale)))
        Metrics.add(Metrics.journalReads, 1, tailRead)
        if (page instanceof StaleCursor) {
          // pruned past the tail: its live subscribers missed rows that are gone, so each re-reads and is told its
          // cursor is stale (I8); the tail goes on from the floor
          for (const sink of live) drop(sink)
          lastRead = Math.max(lastRead, page.retentionFloor)
          continue
        }
        lastRead = page.through
        knownHead = Math.max(knownHead, page.head)
        if (page.through > from) {
          // traced: the read and its hand-off to the live subscribers, under the publishes of its rows
          const span = Tracing.isTracing()
            ? Tracing.startRowSpan(tracer, "khala.tail_read", page.rows, readStart, {
              "khala.topic": topic,
              "khala.rows": page.rows.length,
              "khala.through": page.through,
              "khala.live_subscribers": live.size
            })
            : undefined
          fanOut(from, page.through, page.rows, page.head)
          span?.end(Tracing.nowNanos(), Exit.void)
        }
        if (page.through >= page.head) return
      }
    })

    yield* Effect.gen(function*() {
      while (true) {
        yield* watched.beyond(lastRead)
        yield* readNew
        // Appends that arrive meanwhile are read together: at a high rate each subscriber gets one batch per
        // interval instead of one per append, while an append after a quiet spell is read at once.
        yield* Effect.sleep(options.coalesce)
      }
    }).pipe((loop) => supervised(`the tail of ${topic}`, loop), Effect.forkScoped)

    return {
      lastRead: () => lastRead,
      knownHead: () => knownHead,
      goLive: (sink) => {
        if (lastRead > sink.sent) return false
        live.add(sink)
        return true
      },
      leave: (sink) => {
        live.delete(sink)
      }
    }
  })
