import type { SqlClient } from "@effect/sql"
import type { PgClient } from "@effect/sql-pg"
import type { ConfigError } from "effect"
import { Effect, Layer } from "effect"
import type { Options as TopicCatalogOptions, TopicCatalog, TopicCatalogError } from "../protocol/TopicCatalog.js"
import { layer as TopicCatalogLayer } from "../protocol/TopicCatalog.js"
import type { HeadSignals } from "../services/HeadSignals.js"
import type { Revocations } from "../services/Revocations.js"
import type { StorageError } from "../services/StorageError.js"
import * as AppenderPg from "../storage/postgres/AppenderPg.js"
import * as DocumentsPg from "../storage/postgres/DocumentsPg.js"
import * as HeadSignalsPg from "../storage/postgres/HeadSignalsPg.js"
import * as JournalPg from "../storage/postgres/JournalPg.js"
import { migrate } from "../storage/postgres/Migrations.js"
import * as PgClientGated from "../storage/postgres/PgClientGated.js"
import * as RetentionStorePg from "../storage/postgres/RetentionStorePg.js"
import * as RevocationsPg from "../storage/postgres/RevocationsPg.js"
import * as SequencerPg from "../storage/postgres/SequencerPg.js"
import type { KhalaServices } from "./Core.js"
import { engine, registerCatalog } from "./Core.js"
import * as Database from "./Database.js"

/**
 * A `PgClient` (and `SqlClient`) for a runtime to compose Khala over: `PgClient.layer`'s own configuration, over a
 * pool that is safe to interrupt in bulk and never cancels another fiber's statement (see `PgClientGated`).
 */
export const layerPgClient = PgClientGated.layer

/** The Postgres storage on the `SqlClient` given; the schema must be migrated already. */
export const storage = Layer.mergeAll(
  SequencerPg.layer,
  JournalPg.layer,
  DocumentsPg.layer,
  RetentionStorePg.layer,
  AppenderPg.layer
)

/** The services over an `SqlClient` whose schema is migrated, with the given hints between processes. */
export const layerServices: Layer.Layer<
  KhalaServices,
  ConfigError.ConfigError,
  SqlClient.SqlClient | HeadSignals
> = engine(storage)

/**
 * The durable core over an `SqlClient` and a catalog: migrates (safe when several processes start at once), then
 * registers the catalog's topics, when built; then loads the revocations (which need the migrated schema) and keeps
 * them current, by `LISTEN` when the context offers `RevocationsPg.layerSignals`, else by polling.
 */
export const layerCore: Layer.Layer<
  KhalaServices | Revocations,
  StorageError | ConfigError.ConfigError,
  SqlClient.SqlClient | HeadSignals | TopicCatalog
> = RevocationsPg.layer.pipe(
  Layer.provideMerge(
    Layer
      .effectDiscard(Effect.zipRight(migrate, registerCatalog))
      .pipe(Layer.provideMerge(layerServices))
  )
)

/**
 * The durable core over an `SqlClient` speaking Postgres and the hints between processes it allows (for the embedded
 * database, `EmbeddedPostgres` provides both), with the v1 topic catalog extended by `catalog`.
 */
export const layerWith = (
  catalog: TopicCatalogOptions = {}
): Layer.Layer<
  KhalaServices | Revocations | TopicCatalog,
  StorageError | TopicCatalogError | ConfigError.ConfigError,
  SqlClient.SqlClient | HeadSignals
> => layerCore.pipe(Layer.provideMerge(TopicCatalogLayer(catalog)))

/**
 * The durable core over the runtime's own `PgClient`, with the v1 topic catalog extended by `catalog` (extra topics,
 * retention overrides). `Publisher.publish` joins the runtime's `SqlClient.withTransaction`; other Khala processes on
 * the same database are hinted with `NOTIFY` after Khala's own commits (`KHALA_NOTIFY`).
 */
export const layer = (
  catalog: TopicCatalogOptions = {}
): Layer.Layer<
  KhalaServices | Revocations | TopicCatalog,
  StorageError | TopicCatalogError | ConfigError.ConfigError,
  PgClient.PgClient | SqlClient.SqlClient
> => layerWith(catalog).pipe(Layer.provide(HeadSignalsPg.layer), Layer.provide(RevocationsPg.layerSignals))

/**
 * The durable core on the database the environment names: `DATABASE_URL`, else the embedded database in
 * `KHALA_DATA_DIR` (default `./.khala`).
 */
export const layerConfig = (
  catalog: TopicCatalogOptions = {}
): Layer.Layer<
  KhalaServices | Revocations | TopicCatalog | SqlClient.SqlClient,
  StorageError | TopicCatalogError | ConfigError.ConfigError
> => layerWith(catalog).pipe(Layer.provideMerge(Database.layerConfig))
