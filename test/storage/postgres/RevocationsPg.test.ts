import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Context, Effect, Fiber, Layer, Redacted, Schedule } from "effect"
import { Revocations } from "../../../src/services/Revocations.js"
import { migrate } from "../../../src/storage/postgres/Migrations.js"
import * as PgClientGated from "../../../src/storage/postgres/PgClientGated.js"
import * as RevocationsPg from "../../../src/storage/postgres/RevocationsPg.js"
import { waitUntil } from "../../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../../support/Postgres.js"

/** One node's revocations on the database: its own pool, listen connection (or none) and poll interval. */
const node = (url: string, options: { readonly listen: boolean; readonly poll: string }) =>
  Effect.map(
    Layer.build(
      RevocationsPg.layer.pipe(
        options.listen ? Layer.provide(RevocationsPg.layerSignals) : (layer) => layer,
        Layer.provideMerge(PgClientGated.layer({ url: Redacted.make(url), maxConnections: 2 })),
        Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(
          new Map([["KHALA_REVOCATION_POLL_INTERVAL", options.poll]])
        )))
      )
    ),
    (context) => ({ revocations: Context.get(context, Revocations), sql: Context.get(context, SqlClient.SqlClient) })
  )

/** A fresh database with the khala schema. */
const migratedDatabase = Effect.tap(
  testDatabase,
  ({ url }) =>
    Effect.provide(migrate, PgClientGated.layer({ url: Redacted.make(url), maxConnections: 1 })).pipe(Effect.orDie)
)

const bob = { subject: "bob", tokenId: "t-bob" }
const later = () => new Date(Date.now() + 60_000)

describe.skipIf(!postgresAvailable)("revocations in Postgres", () => {
  it.live("another node learns of a revocation by LISTEN, or by its poll without one; a lift travels too", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* migratedDatabase
      const writer = yield* node(url, { listen: false, poll: "1 minute" })
      // a poll of a minute: within the test, only the notification can tell this one
      const listening = yield* node(url, { listen: true, poll: "1 minute" })
      const polling = yield* node(url, { listen: false, poll: "100 millis" })
      const waits = yield* Effect.fork(listening.revocations.awaitRevoked(bob))
      yield* writer.revocations.revoke({ subject: "bob" }, later())
      expect(yield* writer.revocations.isRevoked(bob)).toBe(true)
      yield* Fiber.join(waits).pipe(Effect.timeout("5 seconds"))
      yield* waitUntil("the polling node knows", () => Effect.runSync(polling.revocations.isRevoked(bob)), {
        timeoutMs: 5000
      })
      // a lift (an end now) reaches both
      yield* writer.revocations.revoke({ subject: "bob" }, new Date())
      yield* waitUntil(
        "the lift is known",
        () =>
          !Effect.runSync(listening.revocations.isRevoked(bob)) && !Effect.runSync(polling.revocations.isRevoked(bob)),
        { timeoutMs: 5000 }
      )
      // a node started later loads what is in force
      yield* writer.revocations.revoke({ tokenId: "t-carol" }, later())
      const late = yield* node(url, { listen: false, poll: "1 minute" })
      expect(yield* late.revocations.isRevoked({ subject: "carol", tokenId: "t-carol" })).toBe(true)
    })))

  it.live("rows that ended over an hour ago are pruned; recent ones are kept, so that a lift reaches every node", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* migratedDatabase
      const first = yield* node(url, { listen: false, poll: "1 minute" })
      yield* first.revocations.revoke({ subject: "long-ago" }, new Date(Date.now() - 2 * 3600_000))
      yield* first.revocations.revoke({ subject: "just-lifted" }, new Date(Date.now() - 60_000))
      yield* first.revocations.revoke({ subject: "in-force" }, later())
      // a node's start prunes
      yield* node(url, { listen: false, poll: "1 minute" })
      const values = () => first.sql<{ value: string }>`select value from khala.sync_revocations order by value`
      const rows = yield* values().pipe(
        Effect.filterOrFail((rows) => rows.length === 2),
        Effect.retry(Schedule.spaced("50 millis").pipe(Schedule.upTo("5 seconds")))
      )
      expect(rows.map((row) => row.value)).toEqual(["in-force", "just-lifted"])
    })))

  it.live("a revoke inside a caller's transaction is not part of it", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* migratedDatabase
      const { revocations, sql } = yield* node(url, { listen: false, poll: "1 minute" })
      const rolledBack = sql.withTransaction(
        Effect.zipRight(revocations.revoke({ subject: "bob" }, later()), Effect.fail("roll back" as const))
      )
      expect(yield* Effect.flip(rolledBack)).toBe("roll back")
      const rows = yield* sql<{ value: string }>`select value from khala.sync_revocations`
      expect(rows.map((row) => row.value)).toEqual(["bob"])
    })))
})
