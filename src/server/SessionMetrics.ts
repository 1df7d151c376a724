/**
 * What a `sync:v1` session records (docs/metrics.md): joined clients by version, subscriptions by topic, and the lag of
 * live batches from their commit to their write to the socket.
 */
import type { MetricLabel, Scope, Tracer } from "effect"
import { Effect, Exit } from "effect"
import type { Batch } from "../services/Hub.js"
import * as Metrics from "../services/Metrics.js"
import * as Tracing from "../services/Tracing.js"

/**
 * Records the write of a live batch to one socket (and traces it, when tracing is on): the lag of its oldest row, from the row's commit (`inserted_at`,
 * the database's clock) to now (this process's clock; skew between them shows here too).
 */
export const liveWritten = (batch: Batch, tracer: Tracer.Tracer): void => {
  if (Tracing.isTracing()) {
    // traced: the write of the batch to this socket, under the publishes of its rows (docs/metrics.md, "Traces")
    const now = Tracing.nowNanos()
    Tracing.startRowSpan(tracer, "khala.socket_write", batch.updates, now, {
      "khala.topic": batch.topic,
      "khala.rows": batch.updates.length,
      "khala.through": batch.through
    })?.end(now, Exit.void)
  }
  const oldest = batch.updates[0]
  if (oldest === undefined || !Metrics.isRecording()) return
  Metrics.record(
    Metrics.liveLag,
    Math.max(0, Date.now() - oldest.insertedAt.getTime()) / 1000,
    Metrics.topicLabel(batch.topic)
  )
}

/** Counts a topic subscription while it runs. */
export const subscription = (topic: string) => <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  const labels = Metrics.topicLabel(topic)
  return Effect.acquireUseRelease(
    Effect.sync(() => {
      Metrics.add(Metrics.subscribes, 1, labels)
      Metrics.add(Metrics.subscriptions, 1, labels)
    }),
    () => effect,
    () => Metrics.increment(Metrics.subscriptions, -1, labels)
  )
}

/**
 * The socket's joined client, counted by its `client_build_id` and `protocol_version` while its join lasts: a join
 * replaces the previous one's labels, and the socket's end removes them.
 */
export const client: Effect.Effect<
  { readonly joined: (payload: unknown) => Effect.Effect<void>; readonly left: Effect.Effect<void> },
  never,
  Scope.Scope
> = Effect.gen(function*() {
  let current: ReadonlyArray<MetricLabel.MetricLabel> | undefined
  const release = () => {
    if (current !== undefined) Metrics.add(Metrics.clients, -1, current)
    current = undefined
  }
  yield* Effect.addFinalizer(() => Effect.sync(release))
  return {
    joined: (payload) =>
      Effect.sync(() => {
        const fields = typeof payload === "object" && payload !== null ? payload as Record<string, unknown> : {}
        release()
        current = Metrics.clientLabels(fields["client_build_id"], fields["protocol_version"])
        Metrics.add(Metrics.joins)
        Metrics.add(Metrics.clients, 1, current)
      }),
    left: Effect.sync(release)
  }
})
