import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import type { Scope } from "effect"
import { Context, Deferred, Effect, Exit, Layer, Option, Ref, SynchronizedRef } from "effect"
import { Drain } from "./Drain.js"
import { ServerConfig } from "./ServerConfig.js"

/** How long `/readyz` waits for the database before answering not ready. */
const readinessTimeout = "2 seconds"

/** What `/readyz` found: ready, or why not. */
export type ReadinessState = "ready" | "draining" | "full" | "database unavailable"

/** The node's readiness: its checks of the database and the log of its state. */
export class Readiness extends Context.Tag("khala/Readiness")<Readiness, {
  /**
   * Whether `check` (a statement on the node's database) succeeds within the readiness timeout. The check runs apart
   * from the probes that wait for it, one at a time: probes that come while it runs share it, however often a load
   * balancer probes. A check past its time is abandoned, its interruption left to finish in the background, and the
   * next probe starts another. So a probe's answer never waits on what the pool does with an interrupted statement:
   * the plain `PgClient.layer` cancels it through another pooled connection (seconds, when the database is away), the
   * gated pool lets it run to its end (never, on a dead connection).
   */
  readonly databaseAnswers: (check: Effect.Effect<unknown, unknown>) => Effect.Effect<boolean>
  /**
   * Records the state a probe found; a state is logged once when it begins, not at every probe (a load balancer
   * probes every few seconds, for as long as the database is away).
   */
  readonly observe: (state: ReadinessState) => Effect.Effect<void>
}>() {}

/** The readiness of one node; checks still running when the node stops are interrupted, never waited for. */
export const makeReadiness: Effect.Effect<Readiness["Type"], never, Scope.Scope> = Effect.gen(function*() {
  const scope = yield* Effect.scope
  const last = yield* Ref.make<ReadinessState | undefined>(undefined)
  const inFlight = yield* SynchronizedRef.make(Option.none<Deferred.Deferred<boolean>>())

  const start = (check: Effect.Effect<unknown, unknown>) =>
    Effect.gen(function*() {
      const answered = yield* Deferred.make<boolean>()
      yield* check.pipe(
        // on timeout the check's fiber is interrupted without waiting for it: its pool may take any time to let go
        Effect.disconnect,
        Effect.timeoutTo({ duration: readinessTimeout, onSuccess: () => true, onTimeout: () => false }),
        Effect.exit,
        Effect.flatMap((exit) => Deferred.succeed(answered, Exit.isSuccess(exit) && exit.value)),
        // the next probe starts a check of its own; one interrupted with the node answers its probes "not ready"
        Effect.ensuring(
          Effect.zipRight(SynchronizedRef.set(inFlight, Option.none()), Deferred.succeed(answered, false))
        ),
        Effect.forkIn(scope)
      )
      return answered
    })

  return Readiness.of({
    databaseAnswers: (check) =>
      SynchronizedRef.modifyEffect(inFlight, (current) =>
        Option.match(current, {
          onSome: (answered) => Effect.succeed([answered, current] as const),
          onNone: () => Effect.map(start(check), (answered) => [answered, Option.some(answered)] as const)
        })).pipe(Effect.flatMap(Deferred.await)),
    observe: (state) =>
      Effect.flatMap(Ref.getAndSet(last, state), (previous) => {
        if (previous === state) return Effect.void
        const log = state === "ready" ? Effect.logInfo("ready") : state === "database unavailable"
          ? Effect.logWarning(`not ready: ${state}`)
          : Effect.logInfo(`not ready: ${state}`)
        return Effect.annotateLogs(log, "readiness", state)
      })
  })
})

/** The readiness of one node, for the layer's lifetime. */
export const layerReadiness: Layer.Layer<Readiness> = Layer.scoped(Readiness, makeReadiness)

const answer = (state: ReadinessState) =>
  state === "ready"
    ? HttpServerResponse.text("ready")
    : HttpServerResponse.text(state, { status: 503 })

/**
 * `/healthz`: the process serves requests. `/readyz`: and it takes sockets (it is not draining, nor holding its most
 * sockets) and its database answers, so a load balancer sends clients only to a node that can serve them and replay
 * their journal. The server is built over a migrated schema (`KhalaPg` migrates before anything serves), so a node
 * that answers at all has its schema up to date.
 */
export const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/healthz", HttpServerResponse.text("ok")),
  HttpRouter.get(
    "/readyz",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      const drain = yield* Drain
      const settings = yield* ServerConfig
      const readiness = yield* Readiness
      const state: ReadinessState = (yield* drain.draining)
        ? "draining"
        : (yield* drain.sockets) >= settings.maxSockets
        ? "full"
        : (yield* readiness.databaseAnswers(sql`select 1`))
        ? "ready"
        : "database unavailable"
      yield* readiness.observe(state)
      return answer(state)
    })
  )
)
