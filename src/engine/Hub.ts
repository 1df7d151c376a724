import { Chunk, Config, Duration, Effect, Layer, Option, Queue, RcMap, Ref, Schedule, Stream } from "effect"
import { integerWithin } from "../services/ConfigInteger.js"
import type { Batch, SubscribeOptions } from "../services/Hub.js"
import { Hub } from "../services/Hub.js"
import type { JournalRow, StaleCursor } from "../services/Journal.js"
import { Journal } from "../services/Journal.js"
import { Sequencer } from "../services/Sequencer.js"
import type { StorageError } from "../services/StorageError.js"
import { UnknownTopic } from "../services/Topic.js"
import { Wakeups } from "../services/Wakeups.js"
import type { View } from "./Audience.js"
import { makeView, visibleRows } from "./Audience.js"

export const HubConfig = Config.all({
  liveBuffer: integerWithin("KHALA_HUB_LIVE_BUFFER", 1, 100_000).pipe(
    Config.withDefault(256),
    Config.withDescription("Live batches a stream subscriber may lag behind before it is switched back to the journal")
  ),
  tailPage: Config.integer("KHALA_HUB_TAIL_PAGE").pipe(Config.withDefault(1000)),
  idleTail: Config.duration("KHALA_HUB_IDLE_TAIL").pipe(Config.withDefault("30 seconds")),
  coalesce: Config.duration("KHALA_HUB_COALESCE").pipe(
    Config.withDefault(Duration.millis(5)),
    Config.withDescription(
      "After reading a topic's new rows, how long its tail lets further appends gather before it reads again: one " +
        "batch per subscriber for all of them. An append after a quiet spell is read at once."
    )
  )
})

/**
 * A subscriber as its topic's tail sees it. The tail hands it each read while it is live; a subscriber that is
 * not live (replaying, catching up, or one that refused a batch) reads the journal by itself.
 */
interface Sink {
  readonly view: View
  /** The watermark through which this subscriber has been handed everything (I4). */
  sent: number
  live: boolean
  readonly deliver: (batch: Batch) => boolean
  /** Wakes the subscriber to catch up from the journal: the tail has stopped handing it reads. */
  readonly fallBehind: () => void
}

/** One topic's tail in this process: the rows it read last and the subscribers they go to. */
interface Tail {
  readonly sinks: Set<Sink>
  readonly lastRead: Ref.Ref<number>
}

const retryTail = Schedule.exponential("50 millis").pipe(Schedule.union(Schedule.spaced("2 seconds")))

type Phase = "replay" | "live" | "catchup"

interface State {
  readonly phase: Phase
  /** The watermark through which this subscriber's stream has emitted everything. */
  readonly sent: number
}

type Step = Effect.Effect<readonly [Batch | undefined, State], StaleCursor | UnknownTopic | StorageError>

/** The stream's live inbox: batches for stream subscribers, and the word that the subscriber fell behind. */
const FellBehind = Symbol.for("khala/Hub/FellBehind")
type Inbox = Queue.Queue<Batch | typeof FellBehind>

export const make = Effect.gen(function*() {
  const config = yield* HubConfig
  const journal = yield* Journal
  const sequencer = yield* Sequencer
  const wakeups = yield* Wakeups

  /**
   * Hands one read to every live subscriber, synchronously: a subscriber exactly caught up to the read's start gets
   * the batch it shares with every other one of its org, so sessions can serialize it once. One that is behind the
   * read (it went live while the read was in flight) or refuses it falls back to the journal; nobody waits.
   */
  const fanOut = (topic: string, tail: Tail, rows: ReadonlyArray<JournalRow>, head: number) => {
    const first = rows[0]!.watermark
    const last = rows[rows.length - 1]!.watermark
    const batchOf = (updates: ReadonlyArray<JournalRow>, view: View): Batch => ({
      topic,
      updates: visibleRows(view, updates),
      through: last,
      head: Math.max(head, last),
      replayComplete: true
    })
    const shared = new Map<string, Batch>()
    for (const sink of tail.sinks) {
      if (!sink.live || sink.sent >= last) continue
      if (sink.sent < first - 1) {
        sink.live = false
        sink.fallBehind()
        continue
      }
      let batch: Batch
      if (sink.sent === first - 1) {
        batch = shared.get(sink.view.key) ?? batchOf(rows, sink.view)
        shared.set(sink.view.key, batch)
      } else {
        batch = batchOf(rows.filter((row) => row.watermark > sink.sent), sink.view)
      }
      let taken: boolean
      try {
        taken = sink.deliver(batch)
      } catch {
        taken = false
      }
      if (taken) {
        sink.sent = last
      } else {
        sink.live = false
        sink.fallBehind()
      }
    }
  }

  const openTail = (topic: string) =>
    Effect.gen(function*() {
      const watched = yield* wakeups.watch(topic)
      const position = (yield* sequencer.positions([topic]))[0]
      if (position === undefined) return yield* new UnknownTopic({ topic })
      // Subscribers replay whatever precedes the tail's start from the journal themselves.
      const tail: Tail = { sinks: new Set(), lastRead: yield* Ref.make(position.head) }
      // Each appended row is read once per process, whatever the number of subscribers.
      const readNew: Effect.Effect<void, unknown> = Effect.gen(function*() {
        const after = yield* Ref.get(tail.lastRead)
        const page = yield* journal.read(topic, after, config.tailPage).pipe(
          // pruned past the tail: subscribers behind the floor get stale_cursor when they re-read (I8)
          Effect.catchTag("StaleCursor", (stale) => Effect.succeed({ rows: [], head: stale.retentionFloor }))
        )
        if (page.rows.length === 0) {
          if (page.head > after) yield* Ref.set(tail.lastRead, page.head)
          return
        }
        yield* Ref.set(tail.lastRead, page.rows[page.rows.length - 1]!.watermark)
        fanOut(topic, tail, page.rows, page.head)
        if (page.rows.length === config.tailPage) yield* readNew
      })
      yield* Effect.gen(function*() {
        yield* watched.beyond(yield* Ref.get(tail.lastRead))
        yield* readNew
        // Appends that arrive meanwhile are read together: at a high rate each subscriber gets one batch per
        // interval instead of one per append, while an append after a quiet spell is read at once.
        yield* Effect.sleep(config.coalesce)
      }).pipe(
        Effect.tapError((error) => Effect.logWarning(`tail of ${topic} failed to read, retrying`, error)),
        Effect.retry(retryTail),
        Effect.forever,
        Effect.forkScoped
      )
      return tail
    })

  const tails = yield* RcMap.make({ lookup: openTail, idleTimeToLive: config.idleTail })

  /**
   * Opens a subscription in the current scope and returns its step: each step yields the next batch, if any, and
   * the state to step from next. The stream API and `follow` both drive it.
   */
  const open = ({ after, audience, batchSize, filter, onLive, topic }: SubscribeOptions) =>
    Effect.gen(function*() {
      const tail = yield* RcMap.get(tails, topic)
      // A fast-path subscriber only ever finds the fell-behind word in its inbox.
      const inbox: Inbox = yield* Queue.bounded<Batch | typeof FellBehind>(onLive === undefined ? config.liveBuffer : 1)
      const view = makeView(audience, filter)
      const sink: Sink = {
        view,
        sent: after,
        live: false,
        deliver: onLive ?? ((batch) => Queue.unsafeOffer(inbox, batch)),
        // When the inbox is full the stream is not waiting: it finds the sink not live once it has drained it.
        fallBehind: () => void Queue.unsafeOffer(inbox, FellBehind)
      }
      yield* Effect.acquireRelease(
        Effect.sync(() => tail.sinks.add(sink)),
        () => Effect.sync(() => tail.sinks.delete(sink))
      )

      const batch = (rows: ReadonlyArray<JournalRow>, through: number, head: number, replayComplete: boolean) =>
        Effect.map(Ref.get(tail.lastRead), (tailHead): Batch => ({
          topic,
          updates: visibleRows(view, rows),
          through,
          head: Math.max(head, tailHead, through),
          replayComplete
        }))

      const fromJournal = (state: State): Step =>
        Effect.gen(function*() {
          const page = yield* journal.read(topic, state.sent, batchSize)
          const caughtUp = page.rows.length < batchSize
          const sent = page.rows.length > 0 ? page.rows[page.rows.length - 1]!.watermark : state.sent
          const replayComplete = state.phase === "catchup" || caughtUp
          return [yield* batch(page.rows, sent, page.head, replayComplete), {
            phase: caughtUp ? "live" : state.phase,
            sent
          }]
        })

      // Runs once the batch that caught this subscriber up has been consumed: only then may the tail hand it more.
      const live = (state: State): Step =>
        Effect.gen(function*() {
          if (!sink.live) {
            // The tail read past this subscriber's position while it was replaying: read that from the journal.
            if ((yield* Ref.get(tail.lastRead)) > state.sent) return [undefined, { ...state, phase: "catchup" }]
            sink.sent = state.sent
            sink.live = true
          }
          const item = yield* Queue.take(inbox)
          if (item !== FellBehind && (sink.live || (yield* Queue.size(inbox)) > 0)) {
            return [item, { phase: "live", sent: item.through }]
          }
          // Everything the tail handed over before it stopped is consumed: continue from the journal.
          return [item === FellBehind ? undefined : item, { phase: "catchup", sent: sink.sent }]
        })

      return (state: State): Step => state.phase === "live" ? live(state) : fromJournal(state)
    })

  const initial = (options: SubscribeOptions): State => ({ phase: "replay", sent: options.after })

  const subscribe = (options: SubscribeOptions) =>
    Stream.unwrapScoped(
      Effect.map(open(options), (step) =>
        Stream.unfoldChunkEffect(initial(options), (state) =>
          Effect.map(step(state), ([batch, next]) =>
            Option.some([batch === undefined ? Chunk.empty<Batch>() : Chunk.of(batch), next] as const))))
    )

  // A loop rather than a stream: a session holds one per subscribed topic for as long as it lives, and a stream's
  // machinery costs several times the memory of the subscription itself.
  const follow = (options: SubscribeOptions, onBatch: (batch: Batch) => Effect.Effect<void>) =>
    Effect.scoped(Effect.gen(function*() {
      const step = yield* open(options)
      let state = initial(options)
      while (true) {
        const [batch, next] = yield* step(state)
        if (batch !== undefined) yield* onBatch(batch)
        state = next
      }
    }))

  return Hub.of({ subscribe, follow })
})

export const layer = Layer.scoped(Hub, make)
