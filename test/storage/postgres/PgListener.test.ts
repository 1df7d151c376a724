import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Ref } from "effect"
import pg from "pg"
import * as PgListener from "../../../src/storage/postgres/PgListener.js"
import { postgresAvailable, testDatabase } from "../../support/Postgres.js"

/** Ends every listen connection on the database from another connection, as an operator or a failover would. */
const killListeners = (url: string) =>
  Effect.promise(async () => {
    const admin = new pg.Client({ connectionString: url })
    await admin.connect()
    try {
      const result = await admin.query(
        "select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'khala-listen' and pid <> pg_backend_pid()"
      )
      return result.rowCount ?? 0
    } finally {
      await admin.end()
    }
  })

const notify = (url: string, payload: string) =>
  Effect.promise(async () => {
    const client = new pg.Client({ connectionString: url })
    await client.connect()
    try {
      await client.query("select pg_notify('test_channel', $1)", [payload])
    } finally {
      await client.end()
    }
  })

describe.skipIf(!postgresAvailable)("the listen connection", () => {
  it.live(
    "a connection that ends while the re-read after connecting runs is noticed, and listening resumes",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const connections = yield* Ref.make(0)
        const received = yield* Deferred.make<string>()
        yield* PgListener.listen({
          config: { connectionString: url, application_name: "khala-listen" },
          channel: "test_channel",
          onPayload: (payload) => Deferred.unsafeDone(received, Effect.succeed(payload)),
          // the first re-read is slow, and the connection is killed in the middle of it
          onConnected: Effect.gen(function*() {
            if ((yield* Ref.updateAndGet(connections, (n) => n + 1)) === 1) {
              expect(yield* killListeners(url)).toBe(1)
              yield* Effect.sleep("300 millis")
            }
          })
        }).pipe(Effect.forkScoped)
        yield* Effect.gen(function*() {
          while ((yield* Ref.get(connections)) < 2) yield* Effect.sleep("50 millis")
        }).pipe(Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("never reconnected") }))
        yield* notify(url, "after the reconnect")
        expect(yield* Deferred.await(received).pipe(Effect.timeout("10 seconds"))).toBe("after the reconnect")
      })),
    { timeout: 90_000 }
  )
})
