import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Context, Effect, Layer, Ref } from "effect"
import { Drain } from "./Drain.js"
import { ServerConfig } from "./ServerConfig.js"

/** How long `/readyz` waits for the database before answering not ready. */
const readinessTimeout = "2 seconds"

/** What `/readyz` found: ready, or why not. */
export type ReadinessState = "ready" | "draining" | "full" | "database unavailable"

/**
 * The node's last readiness, so that a state is logged once when it begins, not at every probe (a load balancer
 * probes every few seconds, for as long as the database is away).
 */
export class Readiness extends Context.Tag("khala/Readiness")<Readiness, {
  readonly observe: (state: ReadinessState) => Effect.Effect<void>
}>() {}

/** The readiness log of one node. */
export const layerReadiness: Layer.Layer<Readiness> = Layer.effect(
  Readiness,
  Effect.map(Ref.make<ReadinessState | undefined>(undefined), (last) =>
    Readiness.of({
      observe: (state) =>
        Effect.flatMap(Ref.getAndSet(last, state), (previous) => {
          if (previous === state) return Effect.void
          const log = state === "ready" ? Effect.logInfo("ready") : state === "database unavailable"
            ? Effect.logWarning(`not ready: ${state}`)
            : Effect.logInfo(`not ready: ${state}`)
          return Effect.annotateLogs(log, "readiness", state)
        })
    }))
)

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
        : yield* sql`select 1`.pipe(
          Effect.timeout(readinessTimeout),
          Effect.as("ready" as const),
          Effect.orElseSucceed(() => "database unavailable" as const)
        )
      yield* readiness.observe(state)
      return answer(state)
    })
  )
)
