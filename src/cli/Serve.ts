import { Command } from "@effect/cli"
import { Layer } from "effect"
import * as AuthJose from "../auth/AuthJose.js"
import * as KhalaServer from "../server/KhalaServer.js"
import { layerKhala } from "./Runtime.js"

export const command = Command.make(
  "serve",
  {},
  () => Layer.launch(KhalaServer.layerConfig.pipe(Layer.provide(layerKhala), Layer.provide(AuthJose.layerConfig)))
).pipe(
  Command.withDescription(
    "Migrate, then serve Khala on KHALA_HOST:KHALA_PORT: the Phoenix socket at /socket/websocket, GET /healthz, and " +
      "GET /readyz (ready when the database answers)"
  )
)
