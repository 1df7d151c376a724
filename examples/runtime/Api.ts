/**
 * The runtime's own HTTP API, served on the same port as Khala's socket (see `Server.ts`):
 *
 * - `POST /runs` `{org_id, name}` → 201 `{id, version}`; 409 when the org has a run of that name
 * - `PUT /runs/:id` `{status}` → 200 `{id, version}`; 404 when there is no such run
 *
 * A real runtime authenticates its callers; this one trusts the body's `org_id`.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Schema } from "effect"
import { Runs, Status } from "./Runs.js"

const CreateRun = Schema.Struct({ org_id: Schema.NonEmptyString, name: Schema.NonEmptyString })
const UpdateRun = Schema.Struct({ status: Status })
const RunPath = Schema.Struct({ id: Schema.NonEmptyString })

const badRequest = (message: string) => HttpServerResponse.unsafeJson({ error: message }, { status: 400 })

export const router = HttpRouter.empty.pipe(
  HttpRouter.post(
    "/runs",
    Effect.gen(function*() {
      const body = yield* HttpServerRequest.schemaBodyJson(CreateRun)
      const run = yield* (yield* Runs).create({ orgId: body.org_id, name: body.name })
      return HttpServerResponse.unsafeJson({ id: run.id, version: run.version }, { status: 201 })
    }).pipe(
      Effect.catchTags({
        DuplicateName: (error) =>
          Effect.succeed(HttpServerResponse.unsafeJson({ error: `a run named ${error.name} exists` }, { status: 409 })),
        ParseError: () => Effect.succeed(badRequest("expected {org_id, name}")),
        RequestError: () => Effect.succeed(badRequest("expected a JSON body"))
      })
    )
  ),
  HttpRouter.put(
    "/runs/:id",
    Effect.gen(function*() {
      const { id } = yield* HttpRouter.schemaPathParams(RunPath)
      const body = yield* HttpServerRequest.schemaBodyJson(UpdateRun)
      const run = yield* (yield* Runs).update(id, body.status)
      return HttpServerResponse.unsafeJson({ id: run.id, version: run.version })
    }).pipe(
      Effect.catchTags({
        RunNotFound: (error) =>
          Effect.succeed(HttpServerResponse.unsafeJson({ error: `no run ${error.id}` }, { status: 404 })),
        ParseError: () => Effect.succeed(badRequest("expected {status}")),
        RequestError: () => Effect.succeed(badRequest("expected a JSON body"))
      })
    )
  )
)
