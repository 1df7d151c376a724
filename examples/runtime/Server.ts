/**
 * The runtime in one process: its API and Khala's socket on one port, over one database. Khala is mounted, not run
 * beside it: the runtime's transactions publish, and the same process delivers to its clients.
 */
import { HttpRouter, HttpServer } from "@effect/platform"
import { Layer } from "effect"
import { AuthJose, KhalaServer } from "khala/server"
import * as Api from "./Api.js"
import * as Runs from "./Runs.js"

/** Khala's catalog as this runtime extends it: its own topic, beside the built-in ones. */
export const catalog = { topics: [{ wireName: Runs.topic }] }

export interface Options {
  readonly port: number
  /** The HS256 secret the runtime signs its clients' tokens with (kid `example`). */
  readonly authSecret: string
  /** Origins of the pages allowed to hydrate over HTTP (CORS), e.g. the browser example's; none by default. */
  readonly corsOrigins?: ReadonlyArray<string> | undefined
}

/**
 * The runtime's HTTP server: `POST /runs` and `PUT /runs/:id` beside Khala's `/socket/websocket`, hydration
 * (`/sync/v1/topics/...`), `/healthz` and `/readyz`. It needs Khala's core (`KhalaPg.layer(catalog)` over a `PgClient`, or `KhalaPg.layerWith(catalog)` over
 * the embedded database) and the `SqlClient` it runs on.
 */
export const layer = (options: Options) =>
  HttpServer.serve(HttpRouter.concat(Api.router, KhalaServer.router)).pipe(
    HttpServer.withLogAddress,
    Layer.provide(Layer.merge(Runs.layer, Layer.effectDiscard(Runs.migrate))),
    Layer.provide(KhalaServer.layerSocket({ corsOrigins: options.corsOrigins ?? [] })),
    Layer.provide(AuthJose.layer([{ kid: "example", secret: new TextEncoder().encode(options.authSecret) }])),
    Layer.provide(KhalaServer.nodeServer({ port: options.port }))
  )
