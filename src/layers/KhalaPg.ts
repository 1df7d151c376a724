import type { SqlClient } from "@effect/sql"
import type { ConfigError } from "effect"
import { Effect, Layer } from "effect"
import { RetentionClass } from "../protocol/gen/openagents/sync/v1/topics_pb.js"
import type { Options as TopicCatalogOptions, TopicCatalogError, TopicInfo } from "../protocol/TopicCatalog.js"
import { layer as TopicCatalogLayer, TopicCatalog } from "../protocol/TopicCatalog.js"
import type { Documents } from "../services/Documents.js"
import type { Hub as HubService } from "../services/Hub.js"
import type { Wakeups as WakeupsService } from "../services/Wakeups.js"
import type { Journal } from "../services/Journal.js"
import type { Publisher } from "../services/Publisher.js"
import { Sequencer } from "../services/Sequencer.js"
import type { StorageError } from "../services/StorageError.js"
import type { TopicRegistration } from "../services/Topic.js"
import * as Database from "./Database.js"
import * as DocumentsPg from "./DocumentsPg.js"
import * as Hub from "./Hub.js"
import * as Wakeups from "./Wakeups.js"
import * as JournalPg from "./JournalPg.js"
import { migrate } from "./Migrations.js"
import * as PublisherPg from "./PublisherPg.js"
import * as SequencerPg from "./SequencerPg.js"

/** Every service Khala's core offers a runtime. */
export type KhalaServices = Sequencer | Journal | Documents | Publisher | WakeupsService | HubService

/** How a catalog topic is recorded in the sequencer: by dotted name, with its retention class by name. */
export const registration = (topic: TopicInfo): TopicRegistration => ({
  topic: topic.wireName,
  retentionClass: (RetentionClass[topic.retentionClass] ?? "UNSPECIFIED").toLowerCase()
})

/** Registers every topic of the catalog, so that `khala.publish` knows them (unknown topics are refused). */
export const registerCatalog = Effect.gen(function*() {
  const catalog = yield* TopicCatalog
  const sequencer = yield* Sequencer
  yield* sequencer.register(catalog.topics.map(registration))
})

/** The services over Postgres, on the `SqlClient` given; the schema must be migrated already. */
export const layerServices: Layer.Layer<KhalaServices, ConfigError.ConfigError, SqlClient.SqlClient> = delivery(Layer.mergeAll(
  SequencerPg.layer,
  JournalPg.layer,
  DocumentsPg.layer
), PublisherPg.layer)

/**
 * Adds what every implementation shares on top of its storage: wake-ups (which the publisher signals after its own
 * commits) and the hub.
 */
export function delivery<RIn, E, E2, R>(
  storage: Layer.Layer<Sequencer | Journal | Documents, E, R>,
  publisher: Layer.Layer<Publisher, E2, RIn>
) {
  const wakeups = Wakeups.layer.pipe(Layer.provideMerge(storage))
  return Hub.layer.pipe(Layer.provideMerge(publisher), Layer.provideMerge(wakeups))
}

/** The durable core over an `SqlClient` and a catalog: migrates (safe when several processes start at once), then
 * registers the catalog's topics, when built. */
export const layerCore: Layer.Layer<
  KhalaServices,
  StorageError | ConfigError.ConfigError,
  SqlClient.SqlClient | TopicCatalog
> = Layer
  .effectDiscard(Effect.zipRight(migrate, registerCatalog))
  .pipe(Layer.provideMerge(layerServices))

/**
 * The durable core over the runtime's own `SqlClient`, with the v1 topic catalog extended by `catalog` (extra topics,
 * retention overrides). `Publisher.publish` joins the runtime's `SqlClient.withTransaction`.
 */
export const layer = (
  catalog: TopicCatalogOptions = {}
): Layer.Layer<
  KhalaServices | TopicCatalog,
  StorageError | TopicCatalogError | ConfigError.ConfigError,
  SqlClient.SqlClient
> =>
  layerCore.pipe(Layer.provideMerge(TopicCatalogLayer(catalog)))

/**
 * The durable core on the database the environment names: `DATABASE_URL`, else the embedded database in
 * `KHALA_DATA_DIR` (default `./.khala`).
 */
export const layerConfig = (
  catalog: TopicCatalogOptions = {}
): Layer.Layer<
  KhalaServices | TopicCatalog | SqlClient.SqlClient,
  StorageError | TopicCatalogError | ConfigError.ConfigError
> => layer(catalog).pipe(Layer.provideMerge(Database.layerConfig))
