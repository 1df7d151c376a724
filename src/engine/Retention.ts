import type { ConfigError } from "effect"
import { Clock, Config, Duration, Effect, Layer, Option } from "effect"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { PruneResult } from "../services/Journal.js"
import { Journal } from "../services/Journal.js"
import * as Metrics from "../services/Metrics.js"
import { RetentionStore } from "../services/RetentionStore.js"
import { Sequencer } from "../services/Sequencer.js"
import { durationWithin } from "../services/Settings.js"
import type { StorageError } from "../services/StorageError.js"
import { makeOutage, supervised } from "./Supervised.js"

export const RetentionConfig = Config.all({
  enabled: Config.boolean("KHALA_RETENTION").pipe(
    Config.withDefault(true),
    Config.withDescription("Prune each topic's journal past its retention on a schedule")
  ),
  interval: durationWithin("KHALA_RETENTION_INTERVAL", "1 seconds", "1 days").pipe(
    Config.withDefault(Duration.minutes(1)),
    Config.withDescription("How often a node runs retention (one node at a time runs it)")
  )
})

/** What one retention run did: one result per topic it pruned; none when another node was running it. */
export type RetentionRun = Option.Option<ReadonlyArray<PruneResult>>

/** How far a retention run has got, as it reports it. */
export interface RetentionProgress {
  /** The registered topics of the catalog the run goes through, and how many of them it has finished. */
  readonly topics: number
  readonly topicsDone: number
  /** The topic being pruned now. */
  readonly pruning: Option.Option<string>
  /** Journal rows deleted so far, over every topic, and the delete statements (batches) that deleted them. */
  readonly rowsRemoved: number
  readonly batches: number
}

/** A run's progress before it has looked at any topic. */
export const noProgress: RetentionProgress = {
  topics: 0,
  topicsDone: 0,
  pruning: Option.none(),
  rowsRemoved: 0,
  batches: 0
}

export interface RunOptions {
  /** Runs at each step of the run: a topic begun or finished, a batch of rows deleted. */
  readonly onProgress?: ((progress: RetentionProgress) => Effect.Effect<void>) | undefined
}

/**
 * One retention run: for every topic of this node's catalog that is registered, the journal rows older than the
 * topic's retention are pruned (in bounded batches, raising its persisted floor first, I8), and the tombstones they
 * passed go with them. Topics outside the catalog are left alone: another runtime may own them with retention of
 * its own. At most one node runs at a time.
 */
export const run = (
  options: RunOptions = {}
): Effect.Effect<RetentionRun, StorageError, TopicCatalog | Sequencer | Journal | RetentionStore> =>
  Effect.gen(function*() {
    const catalog = yield* TopicCatalog
    const sequencer = yield* Sequencer
    const journal = yield* Journal
    const store = yield* RetentionStore
    const report = options.onProgress ?? (() => Effect.void)
    return yield* store.exclusive(Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const registered = new Set((yield* sequencer.topics).map((t) => t.topic))
      const topics = catalog.topics.filter((topic) => registered.has(topic.wireName))
      let progress: RetentionProgress = { ...noProgress, topics: topics.length }
      const advance = (next: Partial<RetentionProgress>) => {
        progress = { ...progress, ...next }
        return report(progress)
      }
      yield* report(progress)
      const results: Array<PruneResult> = []
      for (const topic of topics) {
        const through = yield* store.watermarkBefore(topic.wireName, new Date(now - topic.retentionMs))
        if (Option.isSome(through)) {
          yield* advance({ pruning: Option.some(topic.wireName) })
          const result = yield* journal.prune(topic.wireName, through.value, {
            onBatch: (deleted) =>
              advance({ rowsRemoved: progress.rowsRemoved + deleted, batches: progress.batches + 1 })
          }).pipe(
            // unregistered since the listing: nothing to prune
            Effect.catchTag("UnknownTopic", () => Effect.succeed(undefined))
          )
          if (result !== undefined && result.deleted > 0) results.push(result)
        }
        yield* advance({ topicsDone: progress.topicsDone + 1, pruning: Option.none() })
      }
      return results
    }))
  })

/** One retention run, unobserved (see `run`). */
export const runOnce: Effect.Effect<RetentionRun, StorageError, TopicCatalog | Sequencer | Journal | RetentionStore> =
  run()

/**
 * Sets the retention gauges of the catalog's registered topics: the floor, and the age of the oldest row still in the
 * journal (one single-row read per topic), so that an alert sees a topic whose retention stopped running.
 */
export const observe: Effect.Effect<void, StorageError, TopicCatalog | Sequencer | Journal> = Effect.gen(function*() {
  if (!Metrics.isRecording()) return
  const catalog = yield* TopicCatalog
  const sequencer = yield* Sequencer
  const journal = yield* Journal
  const positions = yield* sequencer.positions(catalog.topics.map((t) => t.wireName))
  const now = yield* Clock.currentTimeMillis
  for (const position of positions) {
    const labels = Metrics.topicLabel(position.topic)
    const page = yield* journal.read(position.topic, position.retentionFloor, 1).pipe(
      // pruned or unregistered since the listing: the next run tells
      Effect.catchTags({ StaleCursor: () => Effect.void, UnknownTopic: () => Effect.void })
    )
    // both gauges of a topic are set at once, after the read: a scrape sees neither or both
    Metrics.record(Metrics.retentionFloor, position.retentionFloor, labels)
    if (page === undefined) continue
    const oldest = page.rows[0]
    Metrics.record(
      Metrics.oldestRetainedAge,
      oldest === undefined ? 0 : (now - oldest.insertedAt.getTime()) / 1000,
      labels
    )
  }
})

/**
 * Retention on a schedule, for the scope: a run every `KHALA_RETENTION_INTERVAL`, skipped while another node runs
 * one; a failed run is logged once per outage and tried again at the next interval.
 */
export const layer: Layer.Layer<
  never,
  ConfigError.ConfigError,
  TopicCatalog | Sequencer | Journal | RetentionStore
> = Layer.scopedDiscard(Effect.gen(function*() {
  const config = yield* RetentionConfig
  if (!config.enabled) return
  const outage = makeOutage("running retention")
  yield* Effect.gen(function*() {
    while (true) {
      yield* Effect.sleep(config.interval)
      const run = yield* runOnce.pipe(
        Effect.tap(() => outage.recovered),
        Effect.catchAll((error) => Effect.as(outage.failed(error), Option.none()))
      )
      for (const result of Option.getOrElse(run, () => [])) {
        Metrics.add(Metrics.retentionPruned, result.deleted, Metrics.topicLabel(result.topic))
        yield* Effect.logInfo(
          `retention pruned ${result.deleted} rows of ${result.topic}; its floor is now ${result.retentionFloor}`
        )
      }
      // every node reports the gauges, not only the one that ran retention
      yield* Effect.catchAll(observe, (error) => Effect.logDebug("reading the retention gauges failed", error))
    }
  }).pipe((loop) => supervised("retention", loop), Effect.forkScoped)
}))
