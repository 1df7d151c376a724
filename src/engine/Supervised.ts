import type { Duration } from "effect"
import { Cause, Effect, Schedule } from "effect"
import { StorageError } from "../services/StorageError.js"

/** Backoff between restarts and retries: 100 ms doubling, at most `cap` apart, jittered. */
export const backoff = (cap: Duration.DurationInput = "5 seconds") =>
  Schedule.exponential("100 millis").pipe(Schedule.union(Schedule.spaced(cap)), Schedule.jittered)

/**
 * Runs a long-lived loop for ever. A defect (a bug, a bad setting) or a failure the loop did not handle is logged at
 * error level with its cause, and the loop starts again after a backoff, so a tail, the heads poll or a listen loop
 * never stops silently while subscribers wait on it. Only interruption ends it.
 */
export const supervised = <E, R>(name: string, loop: Effect.Effect<never, E, R>): Effect.Effect<never, never, R> =>
  Effect.flatMap(Schedule.driver(backoff("10 seconds")), (driver) => {
    const run: Effect.Effect<never, never, R> = Effect.catchAllCause(loop, (cause) =>
      Cause.isInterruptedOnly(cause)
        ? Effect.interrupt
        : Effect.logError(`${name} stopped on a fault; restarting`, cause).pipe(
          Effect.zipRight(Effect.ignore(driver.next(undefined))),
          Effect.zipRight(Effect.suspend(() => run))
        ))
    return run
  })

/**
 * Logs a run of failures of one kind once when it starts and once when it ends, instead of once per attempt: an
 * outage of the database must not flood the log with a warning per retry per subscriber.
 */
export const makeOutage = (what: string) => {
  let failures = 0
  return {
    failed: (error: unknown): Effect.Effect<void> =>
      Effect.suspend(() =>
        failures++ === 0 ? Effect.logWarning(`${what} failed; retrying until it works again`, error) : Effect.void
      ),
    recovered: Effect.suspend((): Effect.Effect<void> => {
      if (failures === 0) return Effect.void
      const count = failures
      failures = 0
      return Effect.logInfo(`${what} works again, after ${count} failed attempt${count === 1 ? "" : "s"}`)
    })
  }
}

export type Outage = ReturnType<typeof makeOutage>

/**
 * Retries an operation for as long as it fails with a `StorageError` (the database is down or restarting), with
 * backoff, reporting to `outage`; its other failures pass through.
 */
export const retryStorage = <A, E, R>(
  effect: Effect.Effect<A, E | StorageError, R>,
  outage: Outage
): Effect.Effect<A, E, R> =>
  Effect.flatMap(Schedule.driver(backoff()), (driver) => {
    const attempt: Effect.Effect<A, E, R> = Effect.catchAll(
      Effect.tap(effect, () => outage.recovered),
      (error) =>
        error instanceof StorageError
          ? outage.failed(error).pipe(
            Effect.zipRight(Effect.ignore(driver.next(undefined))),
            Effect.zipRight(Effect.suspend(() => attempt))
          )
          // not a StorageError, so one of E: `instanceof` cannot narrow a type parameter
          : Effect.fail(error as E)
    )
    return attempt
  })
