import type { Tracer } from "effect"
import { Config, Duration, Effect, Exit, FiberSet, Option, Schedule } from "effect"
import type { PreparedUpdate } from "../services/Appender.js"
import * as FairGate from "../services/FairGate.js"
import * as Metrics from "../services/Metrics.js"
import type { PublishError, PublishOutcome } from "../services/Publisher.js"
import { durationWithin, integerWithin } from "../services/Settings.js"
import type { StorageError } from "../services/StorageError.js"
import * as Tracing from "../services/Tracing.js"
import { backoff } from "./Supervised.js"

export const GroupCommitConfig = Config.all({
  enabled: Config.boolean("KHALA_GROUP_COMMIT").pipe(
    Config.withDefault(true),
    Config.withDescription("Coalesce concurrent standalone publishes into shared transactions")
  ),
  maxBatch: integerWithin("KHALA_GROUP_COMMIT_MAX_BATCH", 1, 10_000).pipe(
    Config.withDefault(500),
    Config.withDescription("Most publishes per shared transaction")
  ),
  maxBatchBytes: integerWithin("KHALA_GROUP_COMMIT_MAX_BATCH_BYTES", 1, 256 * 1024 * 1024).pipe(
    Config.withDefault(4 * 1024 * 1024),
    Config.withDescription("Most payload bytes per shared transaction (a batch always takes at least one publish)")
  ),
  maxWait: durationWithin("KHALA_GROUP_COMMIT_MAX_WAIT", "0 millis", "1 seconds").pipe(
    Config.withDefault(Duration.millis(0)),
    Config.withDescription("How long a batch waits for more publishes after its first (0: take what is queued)")
  ),
  queue: integerWithin("KHALA_GROUP_COMMIT_QUEUE", 1, 1_000_000).pipe(
    Config.withDefault(10_000),
    Config.withDescription("Publishes waiting for a batch before publishers wait for room")
  ),
  lockWait: durationWithin("KHALA_GROUP_COMMIT_LOCK_WAIT", "1 millis", "10 seconds").pipe(
    Config.withDefault(Duration.millis(50)),
    Config.withDescription(
      "How long a batch waits for its topic's lock before it gives its connection back and tries again later " +
        "(a caller's transaction holds a topic until it commits)"
    )
  )
})

interface Pending {
  readonly update: PreparedUpdate
  /** Resumes the waiting publisher (a no-op once it was interrupted). */
  readonly done: (exit: Exit.Exit<PublishOutcome, PublishError>) => void
}

/** One topic's publishes waiting for a batch, and whether a committer is writing them. */
interface Lane {
  readonly pending: Array<Pending>
  committing: boolean
}

/** A deadlock or serialization failure: the batch had no effect and is tried again at once (a few times). */
const isConflict = (error: PublishError): error is StorageError =>
  error._tag === "StorageError" && error.reason === "conflict"

/** The topic's lock was not granted in time: the batch waits, with its connection given back, and tries again. */
const isBusy = (error: PublishError): error is StorageError => error._tag === "StorageError" && error.reason === "busy"

const conflictRetries = 5

/** Most publishes of a batch its span links to besides its parent: a batch holds up to thousands. */
const maxLinks = 32

/**
 * The span of one shared transaction: a child of its first traced publish's span, linked to the next few
 * (docs/metrics.md, "Traces"); its trace context is the one the batch's journal rows carry. A batch of untraced
 * publishes only (sampled out) makes no span.
 */
const withCommitSpan = <A, E, R>(
  batch: ReadonlyArray<Pending>,
  use: (traceContext: string | undefined) => Effect.Effect<A, E, R>
) => {
  const spans: Array<Tracer.ExternalSpan> = []
  for (const pending of batch) {
    if (spans.length > maxLinks) break
    const span = Tracing.fromTraceparent(pending.update.traceContext)
    if (Option.isSome(span)) spans.push(span.value)
  }
  if (spans.length === 0) return use(undefined)
  return Effect.withSpan(Effect.flatMap(Tracing.currentTraceparent, use), "khala.group_commit", {
    kind: "internal",
    captureStackTrace: false,
    parent: spans[0]!,
    links: spans.slice(1).map((span): Tracer.SpanLink => ({ _tag: "SpanLink", span, attributes: {} })),
    attributes: { "khala.topic": batch[0]?.update.topic, "khala.batch_size": batch.length }
  })
}

/**
 * Group commit: publishes made concurrently, outside any caller's transaction, are gathered per topic and written
 * by one `publish_batch` transaction each, so one commit flush serves many of them. Each caller is resolved with its
 * own outcome only once its batch has committed.
 *
 * A batch holds one topic's publishes only, so a publish only ever waits for its own topic: a caller's transaction
 * that holds topic B (publish last holds it until commit) delays B's batches and nobody else's. Such a batch waits
 * for the lock a short while (`KHALA_GROUP_COMMIT_LOCK_WAIT`), then gives its connection back and tries again later,
 * so waiting topics never take the pool from the others. A deadlock or serialization failure is retried; batches are
 * bounded in updates and in bytes. An unknown topic fails its lane's publishes, which all name it.
 */
export const make = (options: {
  readonly publishBatch: (
    updates: ReadonlyArray<PreparedUpdate>,
    options: { readonly lockWaitMs: number; readonly traceContext?: string | undefined }
  ) => Effect.Effect<ReadonlyArray<PublishOutcome>, PublishError>
  readonly publishOne: (update: PreparedUpdate) => Effect.Effect<PublishOutcome, PublishError>
  /** Runs after a batch committed, with its outcomes (wake-ups). */
  readonly committed: (outcomes: ReadonlyArray<PublishOutcome>) => Effect.Effect<void>
}) =>
  Effect.gen(function*() {
    const config = yield* GroupCommitConfig
    const lockWaitMs = Math.max(1, Math.round(Duration.toMillis(config.lockWait)))
    const lanes = new Map<string, Lane>()
    const committers = yield* FiberSet.make()
    // bounds the publishes waiting in every lane together: beyond it, publishers wait for room
    const room = FairGate.make(config.queue)

    const write = (batch: ReadonlyArray<PreparedUpdate>, traceContext: string | undefined) =>
      Effect.flatMap(Schedule.driver(backoff("1 second")), (busy) => {
        const attempt = (conflicts: number): Effect.Effect<ReadonlyArray<PublishOutcome>, PublishError> =>
          Effect.catchAll(options.publishBatch(batch, { lockWaitMs, traceContext }), (error) =>
            isBusy(error)
              ? Effect.zipRight(Effect.ignore(busy.next(undefined)), Effect.suspend(() => attempt(conflicts)))
              : isConflict(error) && conflicts < conflictRetries
              ? Effect.suspend(() => attempt(conflicts + 1))
              : Effect.fail(error))
        return attempt(0)
      })

    const settleWith = (batch: ReadonlyArray<Pending>, traceContext: string | undefined) =>
      write(batch.map((p) => p.update), traceContext).pipe(
        Effect.tap(() => Effect.sync(() => Metrics.record(Metrics.groupCommitBatchSize, batch.length))),
        Effect.tap(options.committed),
        Effect.flatMap((outcomes) => Effect.sync(() => batch.forEach((p, i) => p.done(Exit.succeed(outcomes[i]!))))),
        Effect.catchAll((error) =>
          error._tag === "InvalidUpdate"
            // one update's input failed the batch (validated in process, so unexpected): isolate it
            ? Effect.forEach(batch, (p) =>
              options.publishOne(p.update).pipe(
                Effect.tap((outcome) => options.committed([outcome])),
                Effect.exit,
                Effect.map(p.done)
              ), { discard: true })
            // a database failure, or the lane's unknown topic: every publish of the batch shares it
            : Effect.sync(() => batch.forEach((p) => p.done(Exit.fail(error))))
        ),
        // a defect must not leave callers waiting for ever
        Effect.catchAllCause((cause) => Effect.sync(() => batch.forEach((p) => p.done(Exit.failCause(cause)))))
      )

    const settle = (batch: ReadonlyArray<Pending>) =>
      Tracing.isTracing()
        ? Effect.suspend(() => withCommitSpan(batch, (traceContext) => settleWith(batch, traceContext)))
        : settleWith(batch, undefined)

    /** Takes the lane's next batch: up to `maxBatch` publishes and `maxBatchBytes` of payload, at least one. */
    const nextBatch = (lane: Lane) => {
      let bytes = 0
      let count = 0
      while (count < lane.pending.length && count < config.maxBatch) {
        const size = lane.pending[count]!.update.payloadBytes
        if (count > 0 && bytes + size > config.maxBatchBytes) break
        bytes += size
        count++
      }
      return lane.pending.splice(0, count)
    }

    const runCommitter = yield* FiberSet.runtime(committers)<never>()
    const startCommitter = (topic: string, lane: Lane) => {
      lane.committing = true
      runCommitter(commit(topic, lane))
    }

    // One committer per topic with publishes waiting; it ends when its lane is empty.
    const commit = (topic: string, lane: Lane): Effect.Effect<void> =>
      Effect.gen(function*() {
        if (Duration.toMillis(config.maxWait) > 0) yield* Effect.sleep(config.maxWait)
        while (lane.pending.length > 0) yield* settle(nextBatch(lane))
      }).pipe(Effect.ensuring(Effect.sync(() => {
        lane.committing = false
        if (lane.pending.length === 0) lanes.delete(topic)
        // a publish that arrived as this committer was ending found it still committing: start another for it
        else startCommitter(topic, lane)
      })))

    const enqueue = (pending: Pending) => {
      const topic = pending.update.topic
      let lane = lanes.get(topic)
      if (lane === undefined) {
        lane = { pending: [], committing: false }
        lanes.set(topic, lane)
      }
      lane.pending.push(pending)
      if (!lane.committing) startCommitter(topic, lane)
    }

    return {
      enabled: config.enabled,
      publish: (update: PreparedUpdate) =>
        Effect.uninterruptibleMask((restore) =>
          Effect.zipRight(
            room.take(restore),
            Effect.ensuring(
              // resumed by the committer directly, without a Deferred per publish
              restore(Effect.async<PublishOutcome, PublishError>((resume) => enqueue({ update, done: resume }))),
              room.release
            )
          )
        )
    }
  })
