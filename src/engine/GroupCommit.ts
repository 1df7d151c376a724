import { Config, Deferred, Duration, Effect, Exit, Queue } from "effect"
import type { PreparedUpdate } from "../services/Appender.js"
import type { PublishError, PublishOutcome } from "../services/Publisher.js"
import { integerWithin } from "../services/Settings.js"

export const GroupCommitConfig = Config.all({
  enabled: Config.boolean("KHALA_GROUP_COMMIT").pipe(
    Config.withDefault(true),
    Config.withDescription("Coalesce concurrent standalone publishes into shared transactions")
  ),
  maxBatch: integerWithin("KHALA_GROUP_COMMIT_MAX_BATCH", 1, 10_000).pipe(
    Config.withDefault(500)
  ),
  maxWait: Config.duration("KHALA_GROUP_COMMIT_MAX_WAIT").pipe(
    Config.withDefault("0 millis"),
    Config.withDescription("How long a batch waits for more publishes after its first (0: take what is queued)")
  ),
  queue: integerWithin("KHALA_GROUP_COMMIT_QUEUE", 1, 1_000_000).pipe(
    Config.withDefault(10_000),
    Config.withDescription("Publishes waiting for a batch before publishers wait for room")
  ),
  committers: integerWithin("KHALA_GROUP_COMMIT_COMMITTERS", 1, 64).pipe(
    Config.withDefault(4),
    Config.withDescription("Batches in flight at once (they queue on a topic's lock, which keeps commit order)")
  )
})

interface Pending {
  readonly update: PreparedUpdate
  /** Resumes the waiting publisher (a no-op once it was interrupted). */
  readonly done: (exit: Exit.Exit<PublishOutcome, PublishError>) => void
}

/**
 * Group commit: publishes made concurrently, outside any caller's transaction, are gathered and written by one
 * `publish_batch` transaction each, so one commit flush serves many of them. Each caller is resolved with its own
 * outcome only once its batch has committed. A batch that fails on one caller's input (an unknown topic) is redone
 * one publish at a time, so the bad update fails alone; a database failure fails exactly the callers of its batch.
 */
export const make = (options: {
  readonly publishBatch: (
    updates: ReadonlyArray<PreparedUpdate>
  ) => Effect.Effect<ReadonlyArray<PublishOutcome>, PublishError>
  readonly publishOne: (update: PreparedUpdate) => Effect.Effect<PublishOutcome, PublishError>
  /** Runs after a batch committed, with its outcomes (wake-ups). */
  readonly committed: (outcomes: ReadonlyArray<PublishOutcome>) => Effect.Effect<void>
}) =>
  Effect.gen(function*() {
    const config = yield* GroupCommitConfig
    const queue = yield* Effect.acquireRelease(Queue.bounded<Pending>(config.queue), Queue.shutdown)

    const settle = (batch: ReadonlyArray<Pending>) =>
      options.publishBatch(batch.map((p) => p.update)).pipe(
        Effect.tap(options.committed),
        Effect.flatMap((outcomes) => Effect.sync(() => batch.forEach((p, i) => p.done(Exit.succeed(outcomes[i]!))))),
        Effect.catchAll((error) =>
          error._tag === "StorageError"
            ? Effect.sync(() => batch.forEach((p) => p.done(Exit.fail(error))))
            // one update's input failed the batch: isolate it by publishing one at a time
            : Effect.forEach(batch, (p) =>
              options.publishOne(p.update).pipe(
                Effect.tap((outcome) => options.committed([outcome])),
                Effect.exit,
                Effect.map(p.done)
              ), { discard: true })
        ),
        // a defect must not leave callers waiting for ever
        Effect.catchAllCause((cause) => Effect.sync(() => batch.forEach((p) => p.done(Exit.failCause(cause)))))
      )

    const committer = Effect.gen(function*() {
      const first = yield* Queue.take(queue)
      if (Duration.toMillis(config.maxWait) > 0) yield* Effect.sleep(config.maxWait)
      const more = yield* Queue.takeUpTo(queue, config.maxBatch - 1)
      yield* settle([first, ...more])
    }).pipe(Effect.forever)

    for (let i = 0; i < config.committers; i++) yield* Effect.forkScoped(committer)

    // When the queue is full the publisher waits for room, then for its outcome.
    const enqueueWhenRoom = (update: PreparedUpdate) =>
      Effect.flatMap(Deferred.make<PublishOutcome, PublishError>(), (deferred) =>
        Effect.zipRight(
          Queue.offer(queue, { update, done: (exit) => Deferred.unsafeDone(deferred, exit) }),
          Deferred.await(deferred)
        ))

    return {
      enabled: config.enabled,
      // The common case without a Deferred: the committer resumes the publisher directly, which matters at tens of
      // thousands of publishes a second.
      publish: (update: PreparedUpdate) =>
        Effect.async<PublishOutcome, PublishError>((resume) => {
          if (!Queue.unsafeOffer(queue, { update, done: resume })) resume(enqueueWhenRoom(update))
        })
    }
  })
