import { Command } from "@effect/cli"
import { Layer } from "effect"
import * as HttpServer from "../server/HttpServer.js"
import { layerKhala } from "./Runtime.js"

export const command = Command.make("serve", {}, () =>
  Layer.launch(HttpServer.layer.pipe(Layer.provide(layerKhala)))).pipe(
    Command.withDescription(
      "Migrate, then serve Khala: GET /healthz, GET /readyz (ready when the database answers) on KHALA_HOST:KHALA_PORT"
    )
  )
