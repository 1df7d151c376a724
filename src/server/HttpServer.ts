import { HttpRouter, HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { Effect, Layer } from "effect"
import { createServer } from "node:http"
import * as Health from "./Health.js"
import * as Hydration from "./Hydration.js"
import { ServerConfig } from "./ServerConfig.js"
import * as SyncSocket from "./SyncSocket.js"

/**
 * `khala serve` on `KHALA_HOST`:`KHALA_PORT`: the HTTP routes and, on the same port, the Phoenix socket at
 * `/socket/websocket`.
 */
export const layer = Layer.unwrapScoped(Effect.gen(function*() {
  const { host, port } = yield* ServerConfig
  const socket = yield* SyncSocket.makeHandler
  const hydration = Hydration.routes(yield* Hydration.HydrationConfig)
  const routes = Health.routes.pipe(HttpRouter.get(SyncSocket.socketPath, socket), HttpRouter.concat(hydration))
  return HttpServer.serve(routes).pipe(
    HttpServer.withLogAddress,
    Layer.provide(NodeHttpServer.layer(createServer, { host, port }))
  )
}))
