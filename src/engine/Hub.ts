import type { ConfigError } from "effect"
import { Config, Duration, Effect, Layer, Queue, RcMap, Stream, Take } from "effect"
import * as FairGate from "../services/FairGate.js"
import type { Batch, SubscribeOptions } from "../services/Hub.js"
import { Hub } from "../services/Hub.js"
import type { StaleCursor } from "../services/Journal.js"
import { Journal } from "../services/Journal.js"
import { Sequencer } from "../services/Sequencer.js"
import { durationWithin, integerWithin } from "../services/Settings.js"
import type { UnknownTopic } from "../services/Topic.js"
import { Wakeups } from "../services/Wakeups.js"
import * as Subscription from "./Subscription.js"
import { makeOutage, retryStorage } from "./Supervised.js"
import * as Tail from "./Tail.js"

export const HubConfig = Config.all({
  liveBuffer: integerWithin("KHALA_HUB_LIVE_BUFFER", 1, 100_000).pipe(
    Config.withDefault(256),
    Config.withDescription("Live batches a stream subscriber may lag behind before it is switched back to the journal")
  ),
  tailPage: integerWithin("KHALA_HUB_TAIL_PAGE", 1, 10_000).pipe(
    Config.withDefault(1000),
    Config.withDescription("Most rows a topic's tail reads at once")
  ),
  idleTail: durationWithin("KHALA_HUB_IDLE_TAIL", "1 millis", "1 days").pipe(
    Config.withDefault(Duration.seconds(30)),
    Config.withDescription("How long a topic's tail outlives its last subscriber")
  ),
  coalesce: durationWithin("KHALA_HUB_COALESCE", "0 millis", "10 seconds").pipe(
    Config.withDefault(Duration.millis(5)),
    Config.withDescription(
      "After reading a topic's new rows, how long its tail lets further appends gather before it reads again: one " +
        "batch per subscriber for all of them. An append after a quiet spell is read at once."
    )
  ),
  readConcurrency: integerWithin("KHALA_HUB_READ_CONCURRENCY", 1, 1000).pipe(
    Config.withDefault(8),
    Config.withDescription(
      "Journal reads by subscriptions (replays, catch-ups) at once in this process; the others queue, so a burst of " +
        "reconnects waits its turn instead of queueing in the database pool"
    )
  )
})

/**
 * The hub of one process. One tail per topic, opened on the first subscription and closed a while after the last,
 * reads each appended row once and hands it to the topic's live subscribers; subscriptions replay and catch up from
 * the journal on their own, a bounded number at a time.
 */
export const make = Effect.gen(function*() {
  const config = yield* HubConfig
  const journal = yield* Journal
  const sequencer = yield* Sequencer
  const wakeups = yield* Wakeups
  // one outage report for every tail and subscription of this process
  const outage = makeOutage("reading the journal")
  const read = {}

  const tails = yield* RcMap.make({
    lookup: (topic: string) =>
      Tail.open(topic, {
        journal,
        sequencer,
        wakeups,
        page: config.tailPage,
        coalesce: config.coalesce,
        read,
        outage
      }),
    idleTimeToLive: config.idleTail
  })
  // A failed open is not remembered: the next subscriber tries again (a database hiccup must not refuse a topic
  // for as long as its clients keep retrying).
  const tail = (topic: string) =>
    retryStorage(
      RcMap.get(tails, topic).pipe(Effect.tapErrorCause(() => RcMap.invalidate(tails, topic))),
      outage
    )

  const reads = FairGate.make(config.readConcurrency)
  const context = (topic: string): Subscription.SubscriptionContext => ({
    journal,
    tail: tail(topic),
    withReadPermit: reads.withPermit,
    read,
    liveBuffer: config.liveBuffer,
    outage
  })

  const follow = (options: SubscribeOptions, onBatch: (batch: Batch) => Effect.Effect<void>) =>
    Subscription.follow(context(options.topic), options, onBatch)

  // The stream is `follow` with a one-batch hand-off: a consumer that does not pull makes the loop wait, its mailbox
  // fills, and it falls back to the journal, exactly as a slow socket does.
  const subscribe = (options: SubscribeOptions): Stream.Stream<Batch, StaleCursor | UnknownTopic> =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const handOff = yield* Queue.bounded<Take.Take<Batch, StaleCursor | UnknownTopic>>(1)
      yield* follow(options, (batch) => Queue.offer(handOff, Take.of(batch))).pipe(
        Effect.catchAllCause((cause) => Queue.offer(handOff, Take.failCause(cause))),
        Effect.forkScoped
      )
      return Stream.fromQueue(handOff).pipe(Stream.flattenTake)
    }))

  return Hub.of({ subscribe, follow })
})

export const layer: Layer.Layer<Hub, ConfigError.ConfigError, Journal | Sequencer | Wakeups> = Layer.scoped(Hub, make)
