import type { SqlClient } from "@effect/sql"
import { Effect, Layer } from "effect"
import { RetentionClass } from "../protocol/gen/openagents/sync/v1/topics_pb.js"
import type { TopicInfo } from "../protocol/TopicCatalog.js"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { Documents } from "../services/Documents.js"
import type { Journal } from "../services/Journal.js"
import type { Publisher } from "../services/Publisher.js"
import { Sequencer } from "../services/Sequencer.js"
import type { StorageError } from "../services/StorageError.js"
import type { TopicRegistration } from "../services/Topic.js"
import * as DocumentsPg from "./DocumentsPg.js"
import * as JournalPg from "./JournalPg.js"
import { migrate } from "./Migrations.js"
import * as PublisherPg from "./PublisherPg.js"
import * as SequencerPg from "./SequencerPg.js"

/** Every service Khala's durable core offers a runtime. */
export type KhalaServices = Sequencer | Journal | Documents | Publisher

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
export const layerServices: Layer.Layer<KhalaServices, never, SqlClient.SqlClient> = Layer.mergeAll(
  SequencerPg.layer,
  JournalPg.layer,
  DocumentsPg.layer,
  PublisherPg.layer
)

/**
 * The durable core over the runtime's own `SqlClient`: migrates the `khala` schema (safe when several processes
 * start at once) and registers the catalog's topics when built.
 */
export const layer: Layer.Layer<KhalaServices, StorageError, SqlClient.SqlClient | TopicCatalog> = Layer
  .effectDiscard(Effect.zipRight(migrate, registerCatalog))
  .pipe(Layer.provideMerge(layerServices))
