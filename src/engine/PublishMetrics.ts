/**
 * What a publish records (docs/metrics.md): its latency from the call to its durable outcome, by path, and its outcome by
 * topic.
 */
import { Effect, Exit } from "effect"
import * as Metrics from "../services/Metrics.js"

/** How a publish reached the journal: shared transaction, its own, or the caller's. */
export type Path = "group_commit" | "single" | "caller_transaction"

/** Times `effect`, a publish to `topic` by `path`. */
export const timed = <A, E, R>(topic: string, path: Path, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
  Metrics.isRecording()
    ? Effect.suspend(() => {
      const startedAt = performance.now()
      return Effect.onExit(effect, (exit) =>
        Effect.sync(() => {
          Metrics.record(Metrics.publishDuration, (performance.now() - startedAt) / 1000, Metrics.pathLabel(path))
          Metrics.add(Metrics.publishes, 1, Metrics.topicAnd(topic, "outcome", Exit.isSuccess(exit) ? "ok" : "error"))
        }))
    })
    : effect
