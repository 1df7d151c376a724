import type { ConfigError } from "effect"
import { Clock, Config, Duration, Effect, Layer, Option } from "effect"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { PruneResult } from "../services/Journal.js"
import { Journal } from "../services/Journal.js"
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

/**
 * One retention run: for every topic of this node's catalog that is registered, the journal rows older than the
 * topic's retention are pruned (in bounded batches, raising its persisted floor first, I8), and the tombstones they
 * passed go with them. Topics outside the catalog are left alone: another runtime may own them with retention of
 * its own. At most one node runs at a time.
 */
export const runOnce: Effect.Effect<RetentionRun, StorageError, TopicCatalog | Sequencer | Journal | RetentionStore> =
  Effect.gen(function*() {
    const catalog = yield* TopicCatalog
    const sequencer = yield* Sequencer
    const journal = yield* Journal
    const store = yield* RetentionStore
    return yield* store.exclusive(Effect.gen(function*() {
      const now = yield* Clock.currentTimeMillis
      const registered = new Set((yield* sequencer.topics).map((t) => t.topic))
      const results: Array<PruneResult> = []
      for (const topic of catalog.topics) {
        if (!registered.has(topic.wireName)) continue
        const through = yield* store.watermarkBefore(topic.wireName, new Date(now - topic.retentionMs))
        if (Option.isNone(through)) continue
        const result = yield* journal.prune(topic.wireName, through.value).pipe(
          // unregistered since the listing: nothing to prune
          Effect.catchTag("UnknownTopic", () => Effect.succeed(undefined))
        )
        if (result !== undefined && result.deleted > 0) results.push(result)
      }
      return results
    }))
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
        yield* Effect.logInfo(
          `retention pruned ${result.deleted} rows of ${result.topic}; its floor is now ${result.retentionFloor}`
        )
      }
    }
  }).pipe((loop) => supervised("retention", loop), Effect.forkScoped)
}))
