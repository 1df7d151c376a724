/**
 * The outbox (outbox.md): mirrors every committed journal row to a sink the runtime provides, at least once and in
 * watermark order per topic, from a cursor persisted in the database. It only reads the journal after commit, so a
 * publishing transaction never waits on the sink; a crash or an outage of the sink loses nothing, because the cursor
 * moves only after the sink acknowledged the rows before it.
 */
import type { Duration, Scope } from "effect"
import { Effect, Metric, Option, Schedule } from "effect"
import { Journal } from "../services/Journal.js"
import type { JournalPage } from "../services/Journal.js"
import type { OutboxDeliveryError } from "../services/OutboxSink.js"
import { OutboxSink } from "../services/OutboxSink.js"
import { OutboxStore } from "../services/OutboxStore.js"
import type { StorageError } from "../services/StorageError.js"
import { Wakeups } from "../services/Wakeups.js"
import { backoff, makeOutage, retryStorage, supervised } from "./Supervised.js"

export interface OutboxOptions {
  /** The topics to mirror, by dotted name. */
  readonly topics: ReadonlyArray<string>
  /** Most rows per delivery. Default 100. */
  readonly batchSize?: number | undefined
  /** How often a node that is not forwarding checks whether it may take over. Default 2 seconds. */
  readonly standbyInterval?: Duration.DurationInput | undefined
}

/** Rows the sink acknowledged, by topic (the catalog bounds the label). */
export const rowsForwarded = Metric.counter("khala_outbox_rows_forwarded_total", {
  description: "Journal rows the outbox sink acknowledged",
  incremental: true
})

/** Failed deliveries (each is retried from the same cursor). */
export const deliveryFailures = Metric.counter("khala_outbox_delivery_failures_total", {
  description: "Outbox deliveries the sink refused or did not acknowledge",
  incremental: true
})

/** Rows pruned before the outbox delivered them (a manual prune or a topic reset): the sink missed them. */
export const gaps = Metric.counter("khala_outbox_gaps_total", {
  description: "Times the outbox found rows it had not delivered already pruned",
  incremental: true
})

const defaultBatchSize = 100

/**
 * A mirror gets the payloads clients would hydrate (over the wire's per-update limit) inline; only pointer-mode rows,
 * whose journal row holds none, arrive without one (`hydration_required`).
 */
const maxMirroredPayloadBytes = 64 * 1024 * 1024

/**
 * Forwards one topic for as long as it runs: read after the cursor, deliver, then advance the cursor (after the
 * delivery, so at least once); wait for a hint when caught up. A sink failure stalls this topic alone, and is
 * retried with backoff from the same rows, so the sink sees them in order.
 */
const forwardTopic = (topic: string, batchSize: number): Effect.Effect<
  never,
  StorageError,
  OutboxSink | OutboxStore | Journal | Wakeups | Scope.Scope
> =>
  Effect.gen(function*() {
    const sink = yield* OutboxSink
    const store = yield* OutboxStore
    const journal = yield* Journal
    const watched = yield* (yield* Wakeups).watch(topic)
    const storage = makeOutage(`outbox ${sink.name}: reading ${topic}`)
    const delivery = makeOutage(`outbox ${sink.name}: delivering ${topic}`)

    let cursor = yield* retryStorage(store.cursor(sink.name, topic), storage).pipe(
      // the catalog registered the topic before the outbox started; its disappearance is a bug or a bad setting
      Effect.catchTag("UnknownTopic", (error) => Effect.dieMessage(error.message))
    )

    const read: Effect.Effect<JournalPage, StorageError> = retryStorage(
      Effect.suspend(() => journal.read(topic, cursor, batchSize, { maxPayloadBytes: maxMirroredPayloadBytes })),
      storage
    )
      .pipe(
        Effect.catchTag("UnknownTopic", (error) => Effect.dieMessage(error.message)),
        Effect.catchTag("StaleCursor", (stale) =>
          // Retention keeps what a cursor has not passed, so only a manual prune or a topic reset gets here: the rows
          // are gone, the sink cannot have them; say so loudly and go on from the oldest retained row.
          Effect.logError(
            `outbox ${sink.name}: rows ${stale.after + 1}..${stale.retentionFloor} of ${topic} were pruned before ` +
              `they were delivered; the sink misses them`
          ).pipe(
            Effect.zipRight(Metric.increment(Metric.tagged(gaps, "topic", topic))),
            Effect.zipRight(retryStorage(store.advance(sink.name, topic, stale.retentionFloor), storage)),
            Effect.zipRight(Effect.sync(() => (cursor = stale.retentionFloor))),
            Effect.zipRight(Effect.suspend(() => read))
          ))
      )

    const deliver = (page: JournalPage) =>
      Effect.flatMap(Schedule.driver(backoff()), (driver) => {
        const attempt: Effect.Effect<void> = sink.deliver(topic, page.rows).pipe(
          Effect.zipRight(delivery.recovered),
          Effect.catchAll((error: OutboxDeliveryError) =>
            Metric.increment(Metric.tagged(deliveryFailures, "topic", topic)).pipe(
              Effect.zipRight(delivery.failed(error)),
              Effect.zipRight(Effect.ignore(driver.next(undefined))),
              Effect.zipRight(Effect.suspend(() => attempt))
            )
          )
        )
        return attempt
      })

    while (true) {
      const page = yield* read
      if (page.rows.length > 0) {
        yield* deliver(page)
        yield* Metric.incrementBy(Metric.tagged(rowsForwarded, "topic", topic), page.rows.length)
      }
      // a hole (erased rows) moves the cursor too, so that retention is not held back by it
      if (page.through > cursor) {
        yield* retryStorage(store.advance(sink.name, topic, page.through), storage)
        cursor = page.through
      }
      if (cursor >= page.head) yield* watched.beyond(cursor)
    }
  })

/**
 * The outbox for the scope: while this node holds the sink's lock (one node forwards for a sink at a time), every
 * topic is forwarded by a fiber of its own; otherwise the node stands by and tries again every `standbyInterval`.
 */
export const run = (options: OutboxOptions): Effect.Effect<
  never,
  never,
  OutboxSink | OutboxStore | Journal | Wakeups
> =>
  Effect.gen(function*() {
    const sink = yield* OutboxSink
    const store = yield* OutboxStore
    const batchSize = options.batchSize ?? defaultBatchSize
    const standby = options.standbyInterval ?? "2 seconds"
    const outage = makeOutage(`outbox ${sink.name}`)
    let standingBy = false
    while (true) {
      const forwarded = yield* store.exclusive(
        sink.name,
        Effect.gen(function*() {
          standingBy = false
          yield* Effect.logInfo(`outbox ${sink.name}: forwarding ${options.topics.join(", ")}`)
          return yield* Effect.forEach(
            options.topics,
            (topic) => Effect.scoped(forwardTopic(topic, batchSize)),
            { concurrency: "unbounded", discard: true }
          )
        })
      ).pipe(
        Effect.tap(() => outage.recovered),
        Effect.catchAll((error) => Effect.as(outage.failed(error), Option.some(undefined)))
      )
      if (Option.isNone(forwarded) && !standingBy) {
        standingBy = true
        yield* Effect.logInfo(`outbox ${sink.name}: another node forwards; standing by`)
      }
      yield* Effect.sleep(standby)
    }
  }).pipe((loop) => supervised("the outbox", loop))
