/**
 * `/readyz` answers within its timeout whatever the pool under it does when a statement is interrupted: on the plain
 * `PgClient.layer` of @effect/sql-pg (whose interruption cancels the statement through another pooled connection)
 * and on Khala's gated pool (whose statements, once sent, run to their end), right after the node starts and while
 * its database is unreachable. Probes at once share one check of the database.
 */
import { HttpServer } from "@effect/platform"
import type { SqlClient } from "@effect/sql"
import { PgClient } from "@effect/sql-pg"
import { describe, expect, it } from "@effect/vitest"
import type { Layer as LayerType } from "effect"
import { Deferred, Duration, Effect, Fiber, Layer, Redacted, Schedule, TestClock } from "effect"
import { connect } from "node:net"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import * as Health from "../../src/server/Health.js"
import * as KhalaServer from "../../src/server/KhalaServer.js"
import { authLayer } from "../support/InProcess.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { freePort, httpGet } from "../support/Processes.js"
import { startProxy } from "../support/TcpProxy.js"

/** The readiness timeout (2 s) and a margin for a busy machine. */
const probeBound = Duration.seconds(3.5)

type Pool = (url: string) => LayerType.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown>

const pools: ReadonlyArray<readonly [string, Pool]> = [
  ["the plain PgClient.layer", (url) => PgClient.layer({ url: Redacted.make(url), maxConnections: 4 })],
  ["the gated KhalaPg.layerPgClient", (url) => KhalaPg.layerPgClient({ url: Redacted.make(url), maxConnections: 4 })]
]

/**
 * The node's router on `port`, over the core on `pool`; its server listens before the rest is built, which waits
 * for `opening` (as a runtime's own migrations would).
 */
const node = (
  pool: LayerType.Layer<PgClient.PgClient | SqlClient.SqlClient, unknown>,
  port: number,
  opening: Effect.Effect<void>
) =>
  HttpServer.serve(KhalaServer.router).pipe(
    Layer.provide(KhalaServer.layerSocket({})),
    Layer.provide(authLayer),
    Layer.provideMerge(KhalaPg.layer()),
    Layer.provideMerge(pool),
    Layer.provide(Layer.effectDiscard(opening)),
    Layer.provide(KhalaServer.nodeServer({ port }))
  )

/** Waits until something accepts connections on `port`. */
const listening = (port: number) =>
  Effect.async<boolean>((resume) => {
    const socket = connect(port, "127.0.0.1")
    const settle = (up: boolean) => {
      socket.destroy()
      resume(Effect.succeed(up))
    }
    socket.once("connect", () => settle(true)).once("error", () => settle(false))
    return Effect.sync(() => socket.destroy())
  }).pipe(Effect.repeat({ until: (up) => up, schedule: Schedule.spaced("20 millis") }))

/** `count` probes at once; each answer, or a failure for a probe that took longer than `probeBound`. */
const probes = (port: number, count: number) =>
  Effect.forEach(
    Array.from({ length: count }),
    () =>
      httpGet(`http://127.0.0.1:${port}/readyz`).pipe(
        Effect.timeoutFail({ duration: probeBound, onTimeout: () => "no answer in time" as const }),
        Effect.either
      ),
    { concurrency: "unbounded" }
  )

describe("the readiness check of the database", () => {
  it.scoped("probes at once share one check; one past its time answers false and is abandoned, not awaited", () =>
    Effect.gen(function*() {
      const readiness = yield* Health.makeReadiness
      let started = 0
      // a statement whose interruption never completes: what the gated pool does on a dead connection
      const stuck = Effect.uninterruptible(Effect.zipRight(Effect.sync(() => started++), Effect.never))
      const waiting = yield* Effect.forkAll(Array.from({ length: 5 }, () => readiness.databaseAnswers(stuck)))
      yield* TestClock.adjust("2 seconds")
      expect(yield* Fiber.join(waiting)).toEqual([false, false, false, false, false])
      expect(started).toBe(1)

      // the next probe starts a check of its own, which answers
      expect(yield* readiness.databaseAnswers(Effect.void)).toBe(true)
      expect(yield* readiness.databaseAnswers(Effect.fail("refused"))).toBe(false)
      expect(started).toBe(1)
    }))
})

describe.skipIf(!postgresAvailable)("/readyz", () => {
  describe.each(pools)("on %s", (_, pool) => {
    it.live(
      "answers within its timeout at start, and 503 within it while the database is unreachable",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const db = yield* testDatabase
          const proxy = yield* startProxy(Number(new URL(db.url).port))
          const url = new URL(db.url)
          url.port = String(proxy.port)
          const port = yield* freePort
          const open = yield* Deferred.make<void>()
          const started = yield* Layer.build(node(pool(url.toString()), port, Deferred.await(open))).pipe(
            Effect.orDie,
            Effect.forkScoped
          )

          // listening, not serving yet: probes are told so at once, not left without an answer
          yield* listening(port)
          for (const answer of yield* probes(port, 8)) {
            expect(answer).toMatchObject({ _tag: "Right", right: { status: 503 } })
          }
          yield* Deferred.succeed(open, undefined)
          yield* Fiber.join(started)
          // the database is back before the node stops (a node stopping while it is away is not this test's subject)
          yield* Effect.addFinalizer(() => Effect.sync(() => proxy.restore()))

          // a load balancer's probes from the moment it serves, a few at a time
          for (let round = 0; round < 3; round++) {
            for (const answer of yield* probes(port, 8)) {
              expect(answer).toMatchObject({ _tag: "Right", right: { status: 200, body: "ready" } })
            }
          }

          proxy.blackhole()
          for (let round = 0; round < 4; round++) {
            for (const answer of yield* probes(port, 8)) {
              expect(answer).toMatchObject({ _tag: "Right", right: { status: 503, body: "database unavailable" } })
            }
          }
          expect(yield* httpGet(`http://127.0.0.1:${port}/healthz`)).toEqual({ status: 200, body: "ok" })
        })),
      { timeout: 180_000 }
    )
  })
})
