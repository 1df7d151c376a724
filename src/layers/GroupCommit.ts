import { Config, Deferred, Duration, Effect, Queue } from "effect"
import type { PublishError, PublishOutcome } from "../services/Publisher.js"
import type { PreparedUpdate } from "./PreparedUpdate.js"
import { integerWithin } from "./ConfigInteger.js"

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
  readonly done: Deferred.Deferred<PublishOutcome, PublishError>
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
        Effect.flatMap((outcomes) =>
          Effect.forEach(batch, (p, i) => Deferred.succeed(p.done, outcomes[i]!), { discard: true })
        ),
        Effect.catchAll((error) =>
          error._tag === "StorageError"
            ? Effect.forEach(batch, (p) => Deferred.fail(p.done, error), { discard: true })
            // one update's input failed the batch: isolate it by publishing one at a time
            : Effect.forEach(batch, (p) =>
              options.publishOne(p.update).pipe(
                Effect.tap((outcome) => options.committed([outcome])),
                Effect.exit,
                Effect.flatMap((exit) => Deferred.done(p.done, exit))
              ), { discard: true })
        ),
        // a defect must not leave callers waiting for ever
        Effect.catchAllCause((cause) => Effect.forEach(batch, (p) => Deferred.failCause(p.done, cause), { discard: true }))
      )

    const committer = Effect.gen(function*() {
      const first = yield* Queue.take(queue)
      if (Duration.toMillis(config.maxWait) > 0) yield* Effect.sleep(config.maxWait)
      const more = yield* Queue.takeUpTo(queue, config.maxBatch - 1)
      yield* settle([first, ...more])
    }).pipe(Effect.forever)

    for (let i = 0; i < config.committers; i++) yield* Effect.forkScoped(committer)

    return {
      enabled: config.enabled,
      publish: (update: PreparedUpdate) =>
        Effect.gen(function*() {
          const done = yield* Deferred.make<PublishOutcome, PublishError>()
          yield* Queue.offer(queue, { update, done })
          return yield* Deferred.await(done)
        })
    }
  })

