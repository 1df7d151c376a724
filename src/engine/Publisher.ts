import type { ConfigError } from "effect"
import { Effect, Layer } from "effect"
import type { PreparedUpdate } from "../services/Appender.js"
import { Appender } from "../services/Appender.js"
import type { PublishOutcome } from "../services/Publisher.js"
import { appendedHeads, Publisher } from "../services/Publisher.js"
import * as Tracing from "../services/Tracing.js"
import { Wakeups } from "../services/Wakeups.js"
import * as GroupCommit from "./GroupCommit.js"
import { prepareAll, prepareRemove, prepareUpdate } from "./PreparedUpdate.js"
import * as PublishMetrics from "./PublishMetrics.js"

/**
 * The runtime-facing `Publisher` over any storage's `Appender`: every update is validated and hashed in process
 * before any database work; concurrent standalone publishes share transactions (group commit); and once a
 * standalone append has committed, this process's hub is woken at once and other processes soon. An append inside
 * a caller's transaction signals nothing: its commit is the caller's, and the heads poll sees it.
 */
export const make = Effect.gen(function*() {
  const appender = yield* Appender
  const wakeups = yield* Wakeups

  const signal = (outcomes: ReadonlyArray<PublishOutcome>) =>
    Effect.flatMap(
      appender.inTransaction,
      (inTransaction) => inTransaction ? Effect.void : wakeups.committed(appendedHeads(outcomes))
    )

  const groupCommit = yield* GroupCommit.make({
    publishBatch: (updates, options) => appender.appendAll(updates, options),
    publishOne: appender.appendOne,
    committed: (outcomes) => wakeups.committed(appendedHeads(outcomes))
  })

  const append = (prepared: PreparedUpdate) =>
    Effect.flatMap(appender.inTransaction, (inTransaction) =>
      inTransaction
        // the per-call path: the append belongs to the caller's commit
        ? PublishMetrics.timed(prepared.topic, "caller_transaction", appender.appendOne(prepared))
        : groupCommit.enabled
        ? PublishMetrics.timed(prepared.topic, "group_commit", groupCommit.publish(prepared))
        : PublishMetrics.timed(
          prepared.topic,
          "single",
          Effect.tap(appender.appendOne(prepared), (outcome) => wakeups.committed(appendedHeads([outcome])))
        ))

  // Traced, a publish is a producer span under the caller's current span, and its journal row carries the span's
  // context (docs/metrics.md, "Traces").
  const appendTraced = (prepared: PreparedUpdate) =>
    Tracing.isTracing()
      ? Tracing.withSpanContext(
        "khala.publish",
        "producer",
        { "khala.topic": prepared.topic, "khala.deleted": prepared.deleted },
        (traceContext) => append(traceContext === undefined ? prepared : { ...prepared, traceContext })
      )
      : append(prepared)

  return Publisher.of({
    publish: (update) => Effect.flatMap(prepareUpdate(update), appendTraced),
    publishAll: (updates) =>
      Effect.flatMap(prepareAll(updates), (prepared) =>
        Tracing.isTracing()
          ? Tracing.withSpanContext(
            "khala.publish_all",
            "producer",
            { "khala.updates": prepared.length },
            (traceContext) => appender.appendAll(prepared, { traceContext })
          )
          : appender.appendAll(prepared)).pipe(Effect.tap(signal)),
    remove: (update) => Effect.flatMap(prepareRemove(update), appendTraced)
  })
})

/** The `Publisher` over the storage's `Appender`, signalling the `Wakeups`. */
export const layer: Layer.Layer<Publisher, ConfigError.ConfigError, Appender | Wakeups> = Layer.scoped(Publisher, make)
