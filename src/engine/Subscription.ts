import type { Scope } from "effect"
import { Clock, Deferred, Effect, FiberId } from "effect"
import type { Batch, SubscribeOptions } from "../services/Hub.js"
import type { Journal, ReadOptions, StaleCursor } from "../services/Journal.js"
import * as Metrics from "../services/Metrics.js"
import type { UnknownTopic } from "../services/Topic.js"
import { makeView, visibleRows } from "./Audience.js"
import type { Outage } from "./Supervised.js"
import { retryStorage } from "./Supervised.js"
import type { Sink, Tail } from "./Tail.js"

/**
 * What a subscription's tail hands it between two turns of its loop: batches (for a subscriber without a fast path),
 * in order, then the word that it fell behind. Bounded: a subscriber that lets `capacity` batches pile up refuses the
 * next one and falls behind, which costs it a journal read later and nobody else anything.
 */
const makeMailbox = (capacity: number) => {
  const items: Array<Batch> = []
  let behind = false
  let waiting: Deferred.Deferred<void> | undefined
  const wake = () => {
    if (waiting === undefined) return
    Deferred.unsafeDone(waiting, Effect.void)
    waiting = undefined
  }
  const take: Effect.Effect<Batch | "behind"> = Effect.suspend(() => {
    const item = items.shift()
    if (item !== undefined) return Effect.succeed(item)
    if (behind) {
      behind = false
      return Effect.succeed("behind" as const)
    }
    waiting = Deferred.unsafeMake<void>(FiberId.none)
    return Effect.zipRight(Deferred.await(waiting), take)
  })
  return {
    offer: (batch: Batch) => {
      if (items.length >= capacity) return false
      items.push(batch)
      wake()
      return true
    },
    fellBehind: () => {
      behind = true
      wake()
    },
    take
  }
}

const subscriptionRead = Metrics.sourceLabel("subscription")

export interface SubscriptionContext {
  readonly journal: Journal["Type"]
  /** The topic's tail, held for the scope. */
  readonly tail: Effect.Effect<Tail, UnknownTopic, Scope.Scope>
  /** Bounds the journal reads subscriptions make at once in this process (replays and catch-ups). */
  readonly withReadPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  readonly read: ReadOptions
  readonly liveBuffer: number
  readonly outage: Outage
}

/**
 * One subscription, the only state machine of the hub: every consumer API (the stream, `follow`, the socket's fast
 * path) runs this loop, so they cannot diverge.
 *
 * Two states. Reading: the subscription reads the journal after what it has sent, a page at a time, until a read
 * reaches the head; the first batch that does ends the replay (`replayComplete`, even when it is empty). Then it asks
 * the tail to go live; if the tail has read past it meanwhile, it reads on. Live: the tail hands it every read,
 * through the fast path or its mailbox, until it cannot take one; then it reads the journal again from where the tail
 * left it. The watermark `sent` only grows and every batch carries only rows above it, so a subscriber never gets a
 * row twice nor misses one (I4).
 */
export const follow = (
  context: SubscriptionContext,
  options: SubscribeOptions,
  onBatch: (batch: Batch) => Effect.Effect<void>
): Effect.Effect<never, StaleCursor | UnknownTopic> =>
  Effect.scoped(Effect.gen(function*() {
    const { topic } = options
    const view = makeView(options.audience, options.filter)
    const tail = yield* context.tail
    // with a fast path the mailbox only ever carries the word that the subscriber fell behind
    const mailbox = makeMailbox(options.onLive === undefined ? context.liveBuffer : 0)
    const sink: Sink = {
      view,
      sent: options.after,
      deliver: options.onLive ?? mailbox.offer,
      fellBehind: mailbox.fellBehind
    }
    yield* Effect.addFinalizer(() => Effect.sync(() => tail.leave(sink)))

    let sent = options.after
    let replayed = false
    const labels = Metrics.topicLabel(topic)
    const startedAt = yield* Clock.currentTimeMillis
    let live = false
    while (true) {
      if (!live) {
        // a consumer that stopped reading holds no page and causes no reads (I9)
        if (options.awaitCapacity !== undefined) yield* options.awaitCapacity
        const page = yield* context.withReadPermit(
          retryStorage(context.journal.read(topic, sent, options.batchSize, context.read), context.outage)
        )
        Metrics.add(Metrics.journalReads, 1, subscriptionRead)
        const caughtUp = page.through >= page.head
        if (page.through > sent || (caughtUp && !replayed)) {
          const updates = visibleRows(view, page.rows)
          Metrics.add(replayed ? Metrics.catchupRows : Metrics.replayRows, updates.length, labels)
          yield* onBatch({
            topic,
            updates,
            through: page.through,
            head: Math.max(page.head, tail.knownHead(), page.through),
            replayComplete: replayed || caughtUp
          })
          // the replay ends once its last batch was handed on (sent, for a socket)
          if (caughtUp && !replayed) {
            const now = yield* Clock.currentTimeMillis
            Metrics.record(Metrics.replayDuration, (now - startedAt) / 1000, labels)
          }
        }
        sent = Math.max(sent, page.through)
        if (caughtUp) {
          replayed = true
          sink.sent = sent
          live = tail.goLive(sink)
        }
        continue
      }
      const item = yield* mailbox.take
      if (item === "behind") {
        live = false
        sent = Math.max(sent, sink.sent)
        continue
      }
      if (item.through <= sent) continue
      const first = item.updates[0]
      yield* onBatch(
        first === undefined || first.watermark > sent
          ? item
          : { ...item, updates: item.updates.filter((row) => row.watermark > sent) }
      )
      sent = item.through
    }
  }))
