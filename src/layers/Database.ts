import type { SqlClient } from "@effect/sql"
import type { ConfigError } from "effect"
import { Config, Effect, Layer, Option, Redacted } from "effect"
import type { HeadSignals } from "../services/HeadSignals.js"
import { integerWithin } from "../services/Settings.js"
import { StorageError } from "../services/StorageError.js"
import * as EmbeddedPostgres from "../storage/embedded/EmbeddedPostgres.js"
import * as HeadSignalsPg from "../storage/postgres/HeadSignalsPg.js"
import * as PgClientGated from "../storage/postgres/PgClientGated.js"
import { causeMessage } from "../storage/postgres/PgErrors.js"
import * as RevocationsPg from "../storage/postgres/RevocationsPg.js"

/** Where Khala keeps its data: a Postgres server, or (without one) an embedded Postgres in a data directory. */
export const DatabaseConfig = Config.all({
  url: Config.option(Config.redacted("DATABASE_URL")).pipe(
    // an empty value (DATABASE_URL= in an env file) means unset
    Config.map(Option.filter((url) => Redacted.value(url).trim() !== "")),
    Config.withDescription("Postgres connection URL; without it Khala runs on an embedded Postgres (PGlite)")
  ),
  dataDir: Config.string("KHALA_DATA_DIR").pipe(
    Config.withDefault("./.khala"),
    Config.withDescription("Directory of the embedded database and other local state")
  ),
  maxConnections: integerWithin("KHALA_DB_MAX_CONNECTIONS", 1, 1000).pipe(
    Config.withDefault(10),
    Config.withDescription("Size of the Postgres connection pool")
  )
})

const applicationName = "khala"

/**
 * The `SqlClient` Khala runs on, chosen by configuration, with the hints between processes it allows:
 * `DATABASE_URL` when set (`NOTIFY` between processes, for heads and revocations), else the embedded database in `KHALA_DATA_DIR`, which serves
 * one process, through the same SQL.
 */
export const layerConfig: Layer.Layer<SqlClient.SqlClient | HeadSignals, ConfigError.ConfigError | StorageError> = Layer
  .unwrapEffect(
    Effect.map(DatabaseConfig, (config) =>
      Option.match(config.url, {
        onSome: (url) =>
          Layer.merge(HeadSignalsPg.layer, RevocationsPg.layerSignals).pipe(
            Layer.provideMerge(PgClientGated.layer({ url, maxConnections: config.maxConnections, applicationName })),
            Layer.mapError((error) =>
              error._tag === "SqlError"
                ? new StorageError({ message: `cannot connect to DATABASE_URL: ${causeMessage(error)}`, cause: error })
                : error
            )
          ),
        onNone: () => EmbeddedPostgres.layer(config.dataDir)
      }))
  )
