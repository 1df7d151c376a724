import { Command, Options } from "@effect/cli"
import { NodeHttpClient } from "@effect/platform-node"
import { Console, Effect, Layer, Option } from "effect"
import * as OutboxWebhook from "../engine/OutboxWebhook.js"
import * as Database from "../layers/Database.js"
import { OutboxStore } from "../services/OutboxStore.js"
import * as OutboxStorePg from "../storage/postgres/OutboxStorePg.js"
import { layerKhala } from "./Runtime.js"

/**
 * The outbox cursors on the configured database: locked between processes on a Postgres server, and without a lock
 * on the embedded database, which one process opens at a time.
 */
export const layerStore = Layer.unwrapEffect(
  Effect.map(
    Database.DatabaseConfig,
    (config) => Option.isSome(config.url) ? OutboxStorePg.layer : OutboxStorePg.layerSingleProcess
  )
)

/** The webhook outbox of `khala serve` (nothing unless `KHALA_OUTBOX_WEBHOOK_URL` is set). */
export const layerServe = OutboxWebhook.layerConfig.pipe(
  Layer.provide(layerStore),
  Layer.provide(NodeHttpClient.layerUndici)
)

const list = Command.make("status", {}, () =>
  Effect.gen(function*() {
    const cursors = yield* (yield* OutboxStore).cursors
    if (cursors.length === 0) return yield* Console.log("no outbox cursors")
    for (const cursor of cursors) {
      yield* Console.log(`${cursor.sink} ${cursor.topic} delivered through ${cursor.watermark}`)
    }
  })).pipe(Command.withDescription("Print every outbox cursor: per sink and topic, the watermark delivered through"))

const drop = Command.make(
  "drop",
  { sink: Options.text("sink").pipe(Options.withDescription("The sink's name (KHALA_OUTBOX_SINK)")) },
  (args) =>
    Effect.gen(function*() {
      const count = yield* (yield* OutboxStore).drop(args.sink)
      yield* Console.log(
        `dropped ${count} cursor${count === 1 ? "" : "s"} of ${args.sink}; retention no longer waits for it`
      )
    })
).pipe(
  Command.withDescription(
    "Forget a sink that is gone: retention keeps rows a sink has not been delivered until its cursors are dropped"
  )
)

export const command = Command.make("outbox").pipe(
  Command.withDescription("The outbox: the journal mirrored to a sink, at least once, in order per topic"),
  Command.withSubcommands([list, drop]),
  Command.provide(layerStore),
  Command.provide(layerKhala)
)
