import { Effect, Layer } from "effect"
import * as Database from "../layers/Database.js"
import * as KhalaPg from "../layers/KhalaPg.js"
import { layer as TopicCatalogLayer, v1, wireNameOf } from "../protocol/TopicCatalog.js"
import { extraTopics } from "./Topics.js"

/** The catalog: the v1 topics and the extra ones of `KHALA_TOPICS` / `KHALA_TOPICS_FILE`. */
const catalog = Layer.unwrapEffect(Effect.map(extraTopics, (topics) => TopicCatalogLayer({ topics })))

/** The services on the configured database (`DATABASE_URL`, else the embedded one), before any migration. */
export const layerUnmigrated = KhalaPg.layerServices.pipe(
  Layer.provideMerge(Database.layerConfig),
  Layer.provideMerge(catalog)
)

/** The durable core on the configured database and catalog, migrated and with the catalog's topics registered. */
export const layerKhala = Layer.unwrapEffect(Effect.map(extraTopics, (topics) => KhalaPg.layerConfig({ topics })))

/** A topic as given on the command line, dotted or enum name; names outside the v1 catalog pass as they are. */
export const topicName = (name: string) => wireNameOf(v1, name)
