import { Command } from "@effect/cli"
import { Layer } from "effect"
import * as AuthJose from "../auth/AuthJose.js"
import * as Retention from "../engine/Retention.js"
import * as KhalaServer from "../server/KhalaServer.js"
import * as Outbox from "./Outbox.js"
import { layerKhala } from "./Runtime.js"

export const command = Command.make(
  "serve",
  {},
  () =>
    Layer.launch(
      Layer.mergeAll(KhalaServer.layerConfig, Retention.layer, Outbox.layerServe).pipe(
        Layer.provide(layerKhala),
        Layer.provide(AuthJose.layerConfig)
      )
    )
).pipe(
  Command.withDescription(
    "Migrate, then serve Khala on KHALA_HOST:KHALA_PORT: the Phoenix socket at /socket/websocket, hydration at " +
      "/sync/v1/topics/{topic}/documents, GET /healthz and GET /readyz (ready when the database answers); and run " +
      "retention on a schedule (KHALA_RETENTION_INTERVAL); with KHALA_OUTBOX_WEBHOOK_URL, mirror the journal to a webhook"
  )
)
