import { Command } from "@effect/cli"
import { Config, Effect, Layer } from "effect"
import * as AuthJose from "../auth/AuthJose.js"
import { GroupCommitConfig } from "../engine/GroupCommit.js"
import { HubConfig } from "../engine/Hub.js"
import { OutboxConfig } from "../engine/OutboxWebhook.js"
import * as Retention from "../engine/Retention.js"
import { WakeupsConfig } from "../engine/Wakeups.js"
import { DatabaseConfig } from "../layers/Database.js"
import * as KhalaServer from "../server/KhalaServer.js"
import { SettingsConfig } from "../server/ServerConfig.js"
import { TracingConfig } from "../services/Tracing.js"
import { HeadSignalsConfig } from "../storage/postgres/HeadSignalsPg.js"
import * as Otlp from "./Otlp.js"
import * as Outbox from "./Outbox.js"
import { layerKhala } from "./Runtime.js"
import { extraTopics } from "./Topics.js"

/**
 * Every setting `khala serve` reads, checked at once before anything opens the data directory, the database or a
 * port: a bad value stops the start with one line, not after a migration. The layers read the same values again.
 */
const checkSettings = Effect.zipRight(
  Config.all([
    KhalaServer.ListenConfig,
    SettingsConfig,
    DatabaseConfig,
    AuthJose.AuthConfig,
    Retention.RetentionConfig,
    HubConfig,
    WakeupsConfig,
    GroupCommitConfig,
    HeadSignalsConfig,
    OutboxConfig,
    TracingConfig
  ]),
  extraTopics
)

export const command = Command.make(
  "serve",
  {},
  () =>
    Effect.zipRight(
      checkSettings,
      Layer.launch(
        Layer.mergeAll(KhalaServer.layerConfig, Retention.layer, Outbox.layerServe).pipe(
          Layer.provide(layerKhala),
          Layer.provide(AuthJose.layerConfig),
          Layer.provide(Otlp.layerConfig)
        )
      )
    )
).pipe(
  Command.withDescription(
    "Migrate, then serve Khala on KHALA_HOST:KHALA_PORT: the Phoenix socket at /socket/websocket, hydration at " +
      "/sync/v1/topics/{topic}/documents, GET /healthz, GET /readyz (ready when the node takes sockets and the " +
      "database answers), GET /statusz (its sockets and subscribers, JSON) and GET /metrics; and run retention on a schedule (KHALA_RETENTION_INTERVAL). On SIGTERM it drains: new " +
      "sockets are refused and the sockets held are closed with 1001 over KHALA_DRAIN_WINDOW, then it exits. With KHALA_OUTBOX_WEBHOOK_URL, " +
      "it mirrors the journal to a webhook; with KHALA_OTLP_ENDPOINT, it exports spans over OTLP."
  )
)
