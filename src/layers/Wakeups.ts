import { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { Config, Context, Effect, Layer, Option, Runtime, Schedule, Schema, Stream, SubscriptionRef } from "effect"
import { Sequencer } from "../services/Sequencer.js"
import type { TopicHead, WatchedTopic } from "../services/Wakeups.js"
import { Wakeups } from "../services/Wakeups.js"
import * as PgListener from "./PgListener.js"
import { integerWithin } from "./ConfigInteger.js"

export const WakeupsConfig = Config.all({
  pollInterval: integerWithin("KHALA_POLL_INTERVAL_MS", 1, 60_000).pipe(
    Config.withDefault(10),
    Config.withDescription("How often each process polls the heads of the topics it serves, in milliseconds")
  ),
  notify: Config.boolean("KHALA_NOTIFY").pipe(
    Config.withDefault(true),
    Config.withDescription("Send and listen for NOTIFY hints between processes (polling alone still delivers all)")
  )
})

/** The channel Khala processes hint each other on, with a JSON object of topic heads as payload. */
export const channel = "khala_heads"

/** How long hints of this process's commits are gathered into one `NOTIFY`. */
const notifyCoalescing = "5 millis"

// pg_notify payloads are limited to 8000 bytes; split well below it.
const maxPayloadBytes = 7000

const Heads = Schema.parseJson(Schema.Record({ key: Schema.String, value: Schema.Number }))
const decodeHeads = Schema.decodeUnknownOption(Heads)

/** Encodes heads as `pg_notify` payloads, each under the size limit. */
export const encodeHeads = (heads: ReadonlyMap<string, number>): Array<string> => {
  const payloads: Array<string> = []
  let current: Record<string, number> = {}
  let size = 2
  for (const [topic, head] of heads) {
    const entry = JSON.stringify(topic).length + String(head).length + 2
    if (size + entry > maxPayloadBytes && size > 2) {
      payloads.push(JSON.stringify(current))
      current = {}
      size = 2
    }
    current[topic] = head
    size += entry
  }
  if (size > 2) payloads.push(JSON.stringify(current))
  return payloads
}

interface Watched {
  readonly head: SubscriptionRef.SubscriptionRef<number>
  watchers: number
}

/**
 * Wake-ups of one process. `crossProcess` (a `PgClient`, when the database is a Postgres server) adds the `NOTIFY`
 * hints; without it (memory, embedded) the process's own commits and the poll carry everything.
 */
export const make = Effect.gen(function*() {
  const config = yield* WakeupsConfig
  const sequencer = yield* Sequencer
  const pgClient = config.notify ? yield* Effect.serviceOption(PgClient.PgClient) : Option.none()
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

  if (Option.isSome(pgClient)) {
    const sql = pgClient.value
    // Runs in this layer's scope, never in a caller's transaction: a NOTIFY there would serialize every notifying
    // commit of the database behind one lock (SPEC §3).
    const sendPending = Effect.gen(function*() {
      yield* hintsPending.await
      yield* hintsPending.close
      const heads = new Map(pending)
      pending.clear()
      yield* Effect.forEach(encodeHeads(heads), (payload) => sql`select pg_notify(${channel}, ${payload})`, {
        discard: true
      }).pipe(
        // even were this layer built inside a transaction, the hint must not join it
        Effect.mapInputContext((context: Context.Context<never>) =>
          Context.omit(SqlClient.TransactionConnection)(context)
        ),
        Effect.catchAll((error) => Effect.logWarning("sending head hints failed", error))
      )
      yield* Effect.sleep(notifyCoalescing)
    })
    yield* sendPending.pipe(Effect.forever, Effect.forkScoped)

    const runtime = yield* Effect.runtime<never>()
    const receive = (payload: string) =>
      Option.match(decodeHeads(payload), {
        onNone: () => undefined,
        onSome: (heads) => {
          for (const [topic, head] of Object.entries(heads)) {
            if (watched.has(topic)) Runtime.runFork(runtime)(bump(topic, head))
          }
        }
      })
    yield* PgListener.listen({
      config: PgListener.clientConfig(pgClient.value.config),
      channel,
      onPayload: receive,
      // hints sent while the connection was down are lost: read every watched head now
      onConnected: poll
    }).pipe(Effect.forkScoped)
  }

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
      if (Option.isSome(pgClient) && heads.length > 0) {
        for (const h of heads) pending.set(h.topic, Math.max(pending.get(h.topic) ?? 0, h.head))
        yield* hintsPending.open
      }
    })

  return Wakeups.of({ committed, watch })
})

/** Wake-ups over the configured database; with a `PgClient`, also across processes. */
export const layer = Layer.scoped(Wakeups, make)
