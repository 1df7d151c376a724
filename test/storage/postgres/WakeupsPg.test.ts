import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Layer, Queue, Redacted, Stream } from "effect"
import * as KhalaPg from "../../../src/layers/KhalaPg.js"
import type { Batch } from "../../../src/services/Hub.js"
import { Audience, Hub } from "../../../src/services/Hub.js"
import { Publisher } from "../../../src/services/Publisher.js"
import * as PgClientGated from "../../../src/storage/postgres/PgClientGated.js"
import { postgresAvailable, testDatabase } from "../../support/Postgres.js"

/** One Khala "process" on the database: its own pool, listen connection, tails and configuration. */
const node = (url: string, env: Record<string, string>) =>
  Layer.build(
    KhalaPg.layer().pipe(
      Layer.provideMerge(PgClientGated.layer({ url: Redacted.make(url), maxConnections: 4 })),
      Layer.provide(Layer.setConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env)))))
    )
  )

const topic = "runtime.notifications"

describe.skipIf(!postgresAvailable)("wake-ups across processes", () => {
  it.live(
    "a NOTIFY from another process wakes this one, and after its listen connection is killed too",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        // the reader polls once a minute: within the test only a NOTIFY can wake it
        const reader = yield* node(url, { KHALA_POLL_INTERVAL_MS: "60000" })
        const writer = yield* node(url, {})
        const batches = yield* Queue.unbounded<Batch>()
        yield* Hub.pipe(
          Effect.map((hub) => hub.subscribe({ topic, after: 0, audience: Audience.allOrgs, batchSize: 100 })),
          Stream.unwrap,
          Stream.runForEach((b) => Queue.offer(batches, b)),
          Effect.provide(reader),
          Effect.forkScoped
        )
        yield* Queue.take(batches) // end of replay
        const publish = (docKey: string) =>
          Effect.flatMap(Publisher, (p) => p.publish({ topic, docKey, docVersion: 1, orgId: "o", payload: {} })).pipe(
            Effect.provide(writer)
          )
        const next = Queue.take(batches).pipe(Effect.timeout("10 seconds"))

        yield* publish("first")
        expect((yield* next).updates.map((u) => u.docKey)).toEqual(["first"])

        // cut the reader's listen connection: it reconnects with backoff and re-reads what it may have missed
        const sql = yield* SqlClient.SqlClient.pipe(Effect.provide(writer))
        const killed = yield* sql<{ n: number }>`
        select count(pg_terminate_backend(pid))::int as n from pg_stat_activity
         where application_name = 'khala-listen' and datname = current_database()`
        expect(killed[0]!.n).toBe(2)
        yield* Effect.sleep("1 second")
        yield* publish("second")
        expect((yield* next).updates.map((u) => u.docKey)).toEqual(["second"])
      })),
    { timeout: 180_000 }
  )

  it.live("with NOTIFY turned off, the poll alone delivers everything", () =>
    Effect.scoped(Effect.gen(function*() {
      const { url } = yield* testDatabase
      const reader = yield* node(url, { KHALA_NOTIFY: "false", KHALA_POLL_INTERVAL_MS: "10" })
      const writer = yield* node(url, { KHALA_NOTIFY: "false" })
      const received: Array<string> = []
      yield* Hub.pipe(
        Effect.map((hub) => hub.subscribe({ topic, after: 0, audience: Audience.allOrgs, batchSize: 100 })),
        Stream.unwrap,
        Stream.runForEach((b) => Effect.sync(() => b.updates.forEach((u) => received.push(u.docKey)))),
        Effect.provide(reader),
        Effect.forkScoped
      )
      const keys = Array.from({ length: 50 }, (_, i) => `k${i}`)
      yield* Effect.forEach(keys, (docKey) =>
        Effect.flatMap(Publisher, (p) =>
          p.publish({ topic, docKey, docVersion: 1, orgId: "o", payload: {} })).pipe(
            Effect.provide(writer)
          ), { concurrency: 4 })
      yield* Effect.gen(function*() {
        while (received.length < keys.length) {
          yield* Effect.sleep("10 millis")
        }
      }).pipe(Effect.timeout("10 seconds"))
      expect([...received].sort()).toEqual([...keys].sort())
      const listeners = yield* Effect.flatMap(SqlClient.SqlClient, (sql) =>
        sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
          where application_name = 'khala-listen' and datname = current_database()`).pipe(Effect.provide(writer))
      expect(listeners[0]!.n).toBe(0)
    })), { timeout: 180_000 })
})
