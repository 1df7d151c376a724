import { SqlClient } from "@effect/sql"
import { describe, expect, layer } from "@effect/vitest"
import { Deferred, Effect, Exit, Fiber } from "effect"
import * as EmbeddedPostgres from "../../../src/storage/embedded/EmbeddedPostgres.js"

describe("PGlite client (embedded database)", () => {
  layer(EmbeddedPostgres.layerInMemory, { excludeTestServices: true, timeout: 180_000 })((it) => {
    it.effect("a transaction has the session to itself: other statements wait until it ends", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`create table isolation (n int)`
        const inside = yield* Deferred.make<void>()
        const release = yield* Deferred.make<void>()
        const transaction = yield* sql.withTransaction(Effect.gen(function*() {
          yield* sql`insert into isolation values (1)`
          yield* Deferred.succeed(inside, undefined)
          yield* Deferred.await(release)
          yield* sql`insert into isolation values (2)`
        })).pipe(Effect.fork)
        yield* Deferred.await(inside)
        // outside the transaction: must not see its uncommitted row, nor run inside it
        const reader = yield* sql<{ n: number }>`select count(*)::int as n from isolation`.pipe(Effect.fork)
        yield* Effect.sleep("50 millis")
        expect(reader.unsafePoll()).toBeNull()
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(transaction)
        expect((yield* Fiber.join(reader))[0]!.n).toBe(2)
      }))

    it.effect("a waiter interrupted in line does not keep the session from others", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        const release = yield* Deferred.make<void>()
        const inside = yield* Deferred.make<void>()
        const holder = yield* sql.withTransaction(
          Effect.zipRight(Deferred.succeed(inside, undefined), Deferred.await(release))
        ).pipe(Effect.fork)
        yield* Deferred.await(inside)
        const waiters = yield* Effect.forEach([1, 2, 3], () => Effect.fork(sql`select 1`))
        yield* Effect.sleep("20 millis")
        yield* Fiber.interrupt(waiters[1]!)
        yield* Deferred.succeed(release, undefined)
        yield* Fiber.join(holder)
        yield* Fiber.join(waiters[0]!)
        yield* Fiber.join(waiters[2]!)
        expect(yield* sql`select 2 as two`).toEqual([{ two: 2 }])
      }))

    it.effect("a fiber that outlives its transaction cannot run statements in a later one", () =>
      Effect.gen(function*() {
        const sql = yield* SqlClient.SqlClient
        yield* sql`create table strays (n int)`
        const go = yield* Deferred.make<void>()
        // the forked fiber keeps the transaction's connection in its context after the transaction ends
        const stray = yield* sql.withTransaction(
          Effect.forkDaemon(Effect.zipRight(Deferred.await(go), sql`insert into strays values (1)`))
        )
        const exit = yield* Effect.zipRight(Deferred.succeed(go, undefined), Fiber.await(stray))
        expect(Exit.isFailure(exit)).toBe(true)
        expect(yield* sql`select count(*)::int as n from strays`).toEqual([{ n: 0 }])
      }))
  })
})
