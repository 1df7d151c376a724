import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { SqlClient } from "@effect/sql"
import { Effect } from "effect"

/** How long `/readyz` waits for the database before answering not ready. */
const readinessTimeout = "2 seconds"

/**
 * `/healthz`: the process serves requests. `/readyz`: and its database answers, so a load balancer stops sending
 * clients to a node that could not replay their journal.
 */
export const routes = HttpRouter.empty.pipe(
  HttpRouter.get("/healthz", HttpServerResponse.text("ok")),
  HttpRouter.get(
    "/readyz",
    Effect.gen(function*() {
      const sql = yield* SqlClient.SqlClient
      return yield* sql`select 1`.pipe(
        Effect.timeout(readinessTimeout),
        Effect.as(HttpServerResponse.text("ready")),
        Effect.catchAll((error) =>
          Effect.as(
            Effect.logWarning("not ready: the database does not answer", error),
            HttpServerResponse.text("database unavailable", { status: 503 })
          )
        )
      )
    })
  )
)
