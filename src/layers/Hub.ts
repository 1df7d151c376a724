import { Chunk, Config, Effect, Layer, Option, PubSub, Queue, RcMap, Ref, Schedule, Stream } from "effect"
import type { Batch, SubscribeOptions } from "../services/Hub.js"
import { Hub } from "../services/Hub.js"
import type { JournalRow } from "../services/Journal.js"
import type { StaleCursor } from "../services/Journal.js"
import { Journal } from "../services/Journal.js"
import type { StorageError } from "../services/StorageError.js"
import { Sequencer } from "../services/Sequencer.js"
import { UnknownTopic } from "../services/Topic.js"
import { Wakeups } from "../services/Wakeups.js"
import { integerWithin } from "./ConfigInteger.js"

export const HubConfig = Config.all({
  liveBuffer: integerWithin("KHALA_HUB_LIVE_BUFFER", 1, 100_000).pipe(
    Config.withDefault(256),
    Config.withDescription("Live reads a subscriber may lag behind before it is switched back to the journal")
  ),
  tailPage: Config.integer("KHALA_HUB_TAIL_PAGE").pipe(Config.withDefault(1000)),
  idleTail: Config.duration("KHALA_HUB_IDLE_TAIL").pipe(Config.withDefault("30 seconds"))
})

/** One topic's tail in this process: the rows it read last and the fan-out they went to. */
interface Tail {
  readonly live: PubSub.PubSub<ReadonlyArray<JournalRow>>
  readonly lastRead: Ref.Ref<number>
}

const retryTail = Schedule.exponential("50 millis").pipe(Schedule.union(Schedule.spaced("2 seconds")))

type Phase = "replay" | "live" | "catchup"

interface State {
  readonly phase: Phase
  /** The watermark through which this subscriber has been given everything (I4). */
  readonly sent: number
}

/** The longest run of `rows` that continues `after` without a gap. */
const contiguousAfter = (rows: ReadonlyArray<JournalRow>, after: number) => {
  let end = 0
  while (end < rows.length && rows[end]!.watermark === after + end + 1) end++
  return rows.slice(0, end)
}

export const make = Effect.gen(function*() {
  const config = yield* HubConfig
  const journal = yield* Journal
  const sequencer = yield* Sequencer
  const wakeups = yield* Wakeups

  const openTail = (topic: string) =>
    Effect.gen(function*() {
      const watched = yield* wakeups.watch(topic)
      const position = (yield* sequencer.positions([topic]))[0]
      if (position === undefined) return yield* new UnknownTopic({ topic })
      // Subscribers replay whatever precedes the tail's start from the journal themselves.
      const lastRead = yield* Ref.make(position.head)
      // Sliding: a subscriber that lags a whole buffer behind loses the oldest reads, sees the gap and re-reads them
      // from the journal; the tail never waits for anyone (I9).
      const live = yield* Effect.acquireRelease(
        PubSub.sliding<ReadonlyArray<JournalRow>>(config.liveBuffer),
        PubSub.shutdown
      )
      // Each appended row is read once per process, whatever the number of subscribers.
      const readNew: Effect.Effect<void, unknown> = Effect.gen(function*() {
        const after = yield* Ref.get(lastRead)
        const page = yield* journal.read(topic, after, config.tailPage).pipe(
          // pruned past the tail: subscribers behind the floor get stale_cursor when they re-read (I8)
          Effect.catchTag("StaleCursor", (stale) => Effect.succeed({ rows: [], head: stale.retentionFloor }))
        )
        if (page.rows.length === 0) {
          if (page.head > after) yield* Ref.set(lastRead, page.head)
          return
        }
        yield* Ref.set(lastRead, page.rows[page.rows.length - 1]!.watermark)
        yield* PubSub.publish(live, page.rows)
        if (page.rows.length === config.tailPage) yield* readNew
      })
      yield* Effect.gen(function*() {
        yield* watched.beyond(yield* Ref.get(lastRead))
        yield* readNew
      }).pipe(
        Effect.tapError((error) => Effect.logWarning(`tail of ${topic} failed to read, retrying`, error)),
        Effect.retry(retryTail),
        Effect.forever,
        Effect.forkScoped
      )
      return { live, lastRead } satisfies Tail
    })

  const tails = yield* RcMap.make({ lookup: openTail, idleTimeToLive: config.idleTail })

  const subscribe = ({ after, batchSize, orgId, topic }: SubscribeOptions) =>
    Stream.unwrapScoped(Effect.gen(function*() {
      const tail = yield* RcMap.get(tails, topic)
      // Subscribe to the live fan-out before reading the journal, so nothing falls between replay and live.
      const live = yield* PubSub.subscribe(tail.live)
      const visible = (rows: ReadonlyArray<JournalRow>) =>
        orgId === undefined ? rows : rows.filter((row) => row.orgId === orgId)

      const batch = (rows: ReadonlyArray<JournalRow>, through: number, head: number, replayComplete: boolean) =>
        Effect.map(Ref.get(tail.lastRead), (tailHead): Batch => ({
          topic,
          updates: visible(rows),
          through,
          head: Math.max(head, tailHead, through),
          replayComplete
        }))

      const fromJournal = (state: State) =>
        Effect.gen(function*() {
          const page = yield* journal.read(topic, state.sent, batchSize)
          const caughtUp = page.rows.length < batchSize
          const sent = page.rows.length > 0 ? page.rows[page.rows.length - 1]!.watermark : state.sent
          const replayComplete = state.phase === "catchup" || caughtUp
          const next: State = { phase: caughtUp ? "live" : state.phase, sent }
          return [Chunk.of(yield* batch(page.rows, sent, page.head, replayComplete)), next] as const
        })

      const fromLive = (state: State) =>
        Effect.gen(function*() {
          const first = yield* Queue.take(live)
          const more = yield* Queue.takeAll(live)
          const rows = [first, ...more].flat().filter((row) => row.watermark > state.sent)
          if (rows.length === 0) return [Chunk.empty<Batch>(), state] as const
          const run = contiguousAfter(rows, state.sent)
          // A gap: this subscriber lagged and lost live reads, or subscribed while they were in flight. The journal
          // has every row, so read the missing ones from it.
          const next: State = run.length === rows.length
            ? { phase: "live", sent: rows[rows.length - 1]!.watermark }
            : { phase: "catchup", sent: run.length > 0 ? run[run.length - 1]!.watermark : state.sent }
          if (run.length === 0) return [Chunk.empty<Batch>(), next] as const
          return [Chunk.of(yield* batch(run, next.sent, next.sent, true)), next] as const
        })

      return Stream.unfoldChunkEffect<State, Batch, StaleCursor | UnknownTopic | StorageError, never>(
        { phase: "replay", sent: after },
        (state) => Effect.map(state.phase === "live" ? fromLive(state) : fromJournal(state), Option.some)
      )
    }))

  return Hub.of({ subscribe })
})

export const layer = Layer.scoped(Hub, make)
