import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"
import * as Health from "./Health.js"
import { ServerConfig } from "./ServerConfig.js"

/** The HTTP side of `khala serve`, listening on `KHALA_HOST`:`KHALA_PORT`. */
export const layer = Layer.unwrapEffect(Effect.map(ServerConfig, ({ host, port }) =>
  HttpServer.serve(Health.routes).pipe(
    HttpServer.withLogAddress,
    Layer.provide(NodeHttpServer.layer(createServer, { host, port }))
  )))
