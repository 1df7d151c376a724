import { SqlClient } from "@effect/sql"
import { describe, expect, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Cause, Effect, Exit, Fiber, Layer, Redacted } from "effect"
import * as FairGate from "../../../src/services/FairGate.js"
import * as PgClientGated from "../../../src/storage/postgres/PgClientGated.js"
import { postgresAvailable, testDatabase } from "../../support/Postgres.js"

const maxConnections = 4

const withSql = <A, E>(f: (sql: SqlClient.SqlClient, database: string) => Effect.Effect<A, E, Scope.Scope>) =>
  Effect.scoped(Effect.gen(function*() {
    const { name, url } = yield* testDatabase
    const context = yield* Layer.build(
      PgClientGated.layer({ url: Redacted.make(url), maxConnections, applicationName: "gate_test" })
    )
    return yield* Effect.flatMap(SqlClient.SqlClient, (sql) => f(sql, name)).pipe(Effect.provide(context))
  }))

const backends = (sql: SqlClient.SqlClient, database: string) =>
  sql<{ n: number }>`select count(*)::int as n from pg_stat_activity
    where datname = ${database} and application_name = 'gate_test'`.pipe(Effect.map((rows) => rows[0]!.n))

const canceled = (exit: Exit.Exit<unknown, unknown>) =>
  Exit.isFailure(exit) &&
  Array.from(Cause.failures(exit.cause)).some((error) =>
    (error as { cause?: { code?: string } }).cause?.code === "57014"
  )

describe("FairGate", () => {
  it.effect("survives 5000 interrupted waiters and hands permits out first come, first served", () =>
    Effect.gen(function*() {
      const gate = FairGate.make(1)
      yield* Effect.uninterruptible(gate.take(Effect.interruptible))
      const waiters = yield* Effect.forEach(
        Array.from({ length: 5000 }),
        () => Effect.fork(Effect.uninterruptible(gate.take(Effect.interruptible))),
        { concurrency: "unbounded" }
      )
      yield* Effect.yieldNow()
      expect(gate.waiting()).toBe(5000)
      yield* Fiber.interruptAll(waiters)
      expect(gate.waiting()).toBe(0)
      const order: Array<number> = []
      const next = yield* Effect.forEach([1, 2, 3], (i) =>
        Effect.fork(gate.withPermit(Effect.sync(() => {
          order.push(i)
        }))))
      yield* Effect.yieldNow()
      yield* gate.release
      yield* Fiber.joinAll(next)
      expect(order).toEqual([1, 2, 3])
      // the one permit is free again: it is taken at once
      yield* gate.withPermit(Effect.void).pipe(Effect.timeout("1 second"))
    }))
})

describe.skipIf(!postgresAvailable)("the Postgres pool, interrupted", () => {
  it.live(
    "5000 queries waiting for a connection, interrupted at once: no stack overflow; the pool serves on",
    () =>
      withSql((sql, database) =>
        Effect.gen(function*() {
          // the overflow would be thrown in pg's socket callback, outside any fiber
          const uncaught: Array<unknown> = []
          const onUncaught = (error: unknown) => uncaught.push(error)
          yield* Effect.acquireRelease(
            Effect.sync(() => process.on("uncaughtException", onUncaught)),
            () => Effect.sync(() => process.off("uncaughtException", onUncaught))
          )
          const fibers = yield* Effect.forEach(
            Array.from({ length: 5000 }, (_, i) => i),
            (i) => Effect.fork(sql`select pg_sleep(0.05), ${i}::int as i`),
            { concurrency: "unbounded" }
          )
          yield* Effect.sleep("20 millis")
          yield* Fiber.interruptAll(fibers)
          const rows = yield* Effect.all(
            Array.from({ length: 50 }, (_, i) => sql<{ i: number }>`select ${i}::int as i`),
            { concurrency: "unbounded" }
          )
          expect(uncaught).toEqual([])
          expect(rows.map((r) => r[0]!.i)).toEqual(Array.from({ length: 50 }, (_, i) => i))
          expect(yield* backends(sql, database)).toBeLessThanOrEqual(maxConnections)
        })
      ),
    { timeout: 180_000 }
  )

  it.live(
    "one client's interrupted queries never cancel another's statement",
    () =>
      withSql((sql) =>
        Effect.gen(function*() {
          const deadline = Date.now() + 3000
          let cancels = 0
          let completed = 0
          const count = (exit: Exit.Exit<unknown, unknown>) => {
            if (canceled(exit)) cancels++
            else if (Exit.isSuccess(exit)) completed++
          }
          const bystander = Effect.whileLoop({
            while: () => Date.now() < deadline,
            body: () => Effect.exit(sql`select pg_sleep(0.003)`),
            step: count
          })
          const churn = Effect.whileLoop({
            while: () => Date.now() < deadline,
            body: () =>
              Effect.gen(function*() {
                const fiber = yield* Effect.fork(sql`select pg_sleep(0.005)`)
                if (Math.random() < 0.5) return count(yield* Fiber.await(fiber))
                yield* Effect.sleep(`${Math.random() * 12} millis`)
                yield* Fiber.interrupt(fiber)
              }),
            step: () => undefined
          })
          yield* Effect.all([bystander, bystander, ...Array.from({ length: 6 }, () => churn)], {
            concurrency: "unbounded",
            discard: true
          })
          expect(completed).toBeGreaterThan(100)
          expect(cancels).toBe(0)
        })
      ),
    { timeout: 180_000 }
  )

  it.live(
    "an interrupted transaction rolls back and gives its connection back",
    () =>
      withSql((sql, database) =>
        Effect.gen(function*() {
          yield* sql`create table t (x int)`
          const fiber = yield* Effect.fork(sql.withTransaction(Effect.gen(function*() {
            yield* sql`insert into t values (1)`
            yield* sql`select pg_sleep(0.2)`
            yield* sql`insert into t values (2)`
          })))
          yield* Effect.sleep("50 millis")
          yield* Fiber.interrupt(fiber)
          expect(yield* sql<{ n: number }>`select count(*)::int as n from t`).toEqual([{ n: 0 }])
          expect(yield* backends(sql, database)).toBeLessThanOrEqual(maxConnections)
        })
      ),
    { timeout: 180_000 }
  )
})
