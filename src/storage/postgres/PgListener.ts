import type { PgClient } from "@effect/sql-pg"
import { Effect, Redacted, Schedule } from "effect"
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
 * this one watches its client and reconnects with backoff. Payloads go to `onPayload` synchronously (no buffer);
 * `onConnected` runs after every (re)connection, so a caller can re-read what it may have missed meanwhile.
 */
export const listen = (options: {
  readonly config: pg.ClientConfig
  readonly channel: string
  readonly onPayload: (payload: string) => void
  readonly onConnected: Effect.Effect<void>
}): Effect.Effect<never> =>
  Effect.scoped(Effect.gen(function*() {
    const client = yield* Effect.acquireRelease(
      Effect.tryPromise(async () => {
        const client = new pg.Client(options.config)
        // an error before the listener below is attached must not crash the process
        client.on("error", () => undefined)
        await client.connect()
        return client
      }),
      (client) => Effect.promise(() => client.end()).pipe(Effect.timeout("1 second"), Effect.ignore)
    )
    client.on("notification", (message) => {
      if (message.channel === options.channel && message.payload) options.onPayload(message.payload)
    })
    yield* Effect.tryPromise(() => client.query(`LISTEN ${pg.escapeIdentifier(options.channel)}`))
    yield* options.onConnected
    return yield* Effect.async<never, Error>((resume) => {
      const lost = (error?: Error) => resume(Effect.fail(error ?? new Error("listen connection ended")))
      client.on("error", lost)
      client.on("end", () => lost())
      return Effect.sync(() => {
        client.off("error", lost)
        client.removeAllListeners("end")
      })
    })
  })).pipe(
    Effect.tapError((error) => Effect.logWarning(`listen connection lost, reconnecting: ${error}`)),
    Effect.retry(reconnect),
    Effect.orDie
  )
