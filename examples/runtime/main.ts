/**
 * Runs the example runtime: its API and Khala's socket on EXAMPLE_PORT (default 4100), on DATABASE_URL or, without
 * it, on an embedded database in EXAMPLE_DATA_DIR (default ./.example-runtime):
 *   EXAMPLE_AUTH_SECRET=... node --import tsx examples/runtime/main.ts
 */
import { NodeRuntime } from "@effect/platform-node"
import { Config, Effect, Layer, Option } from "effect"
import { EmbeddedPostgres, KhalaPg } from "khala"
import * as Server from "./Server.js"

const ExampleConfig = Config.all({
  port: Config.port("EXAMPLE_PORT").pipe(Config.withDefault(4100)),
  authSecret: Config.string("EXAMPLE_AUTH_SECRET"),
  databaseUrl: Config.redacted("DATABASE_URL").pipe(Config.option),
  dataDir: Config.string("EXAMPLE_DATA_DIR").pipe(Config.withDefault("./.example-runtime")),
  // the browser example's page, when it is served from another port: `http://127.0.0.1:8080`
  corsOrigins: Config.array(Config.string(), "EXAMPLE_CORS_ORIGINS").pipe(Config.withDefault([]))
})

const program = Effect.gen(function*() {
  const config = yield* ExampleConfig
  const app = Server.layer(config)
  return yield* Option.match(config.databaseUrl, {
    // the runtime's own PgClient, which its routes use too: Khala's publishes join its transactions. Khala's gated
    // pool: requests abandoned in bulk (a probe's timeout, a client gone) never cancel another's statement
    onSome: (url) =>
      Layer.launch(
        app.pipe(Layer.provide(KhalaPg.layer(Server.catalog)), Layer.provide(KhalaPg.layerPgClient({ url })))
      ),
    onNone: () =>
      Layer.launch(
        app.pipe(
          Layer.provide(KhalaPg.layerWith(Server.catalog)),
          Layer.provide(EmbeddedPostgres.layer(config.dataDir))
        )
      )
  })
})

program.pipe(NodeRuntime.runMain)
