import type { PgClient } from "@effect/sql-pg"
import { Deferred, Effect, Exit, Redacted, Schedule } from "effect"
import pg from "pg"

/** Connection settings of a `PgClient`, for a `pg.Client` of our own. */
export const clientConfig = (config: PgClient.PgClientConfig): pg.ClientConfig => ({
  ...(config.url ? { connectionString: Redacted.value(config.url) } : {}),
  ...(config.host ? { host: config.host } : {}),
  ...(config.port ? { port: config.port } : {}),
  ...(config.database ? { database: config.database } : {}),
  ...(config.username ? { user: config.username } : {}),
  ...(config.password ? { password: Redacted.value(config.password) } : {}),
  ...(config.ssl ? { ssl: config.ssl } : {}),
  application_name: "khala-listen"
})

const reconnect = Schedule.exponential("100 millis", 2).pipe(
  Schedule.union(Schedule.spaced("5 seconds")),
  Schedule.jittered
)

/**
 * Listens on `channel` on a connection of its own, for ever: `PgClient.listen` never reports a lost connection, so
 * this one owns its connection's health end to end. The connection is watched from the moment it is open, so that
 * its loss during `LISTEN` or during `onConnected` is noticed too; then it reconnects with backoff. Payloads go to
 * `onPayload` synchronously (no buffer); `onConnected` runs after every (re)connection, so a caller can re-read what
 * it may have missed meanwhile.
 */
export const listen = (options: {
  readonly config: pg.ClientConfig
  readonly channel: string
  readonly onPayload: (payload: string) => void
  readonly onConnected: Effect.Effect<void>
}): Effect.Effect<never> =>
  Effect.scoped(Effect.gen(function*() {
    const lost = yield* Deferred.make<never, Error>()
    const client = yield* Effect.acquireRelease(
      Effect.tryPromise(async () => {
        const client = new pg.Client(options.config)
        // an error before the connection is up must not crash the process: connect() rejects with it
        client.on("error", () => undefined)
        await client.connect()
        return client
      }),
      (client) => Effect.promise(() => client.end()).pipe(Effect.timeout("1 second"), Effect.ignore)
    )
    const onLost = (error?: Error) =>
      Deferred.unsafeDone(lost, Exit.fail(error ?? new Error("listen connection ended")))
    const onEnd = () => onLost()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        client.on("error", onLost)
        client.on("end", onEnd)
        client.on("notification", (message) => {
          if (message.channel === options.channel && message.payload) options.onPayload(message.payload)
        })
      }),
      () =>
        Effect.sync(() => {
          client.off("error", onLost)
          client.off("end", onEnd)
          client.removeAllListeners("notification")
        })
    )
    return yield* Effect.raceFirst(
      Deferred.await(lost),
      Effect.tryPromise(() => client.query(`LISTEN ${pg.escapeIdentifier(options.channel)}`)).pipe(
        Effect.zipRight(options.onConnected),
        Effect.zipRight(Effect.never)
      )
    )
  })).pipe(
    Effect.tapError((error) => Effect.logWarning(`listen connection lost, reconnecting: ${error}`)),
    Effect.retry(reconnect),
    Effect.orDie
  )
