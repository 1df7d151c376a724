import { Layer } from "effect"
import * as Database from "../layers/Database.js"
import * as KhalaPg from "../layers/KhalaPg.js"
import { TopicCatalog, v1, wireNameOf } from "../protocol/TopicCatalog.js"

/** The services on the configured database (`DATABASE_URL`, else the embedded one), before any migration. */
export const layerUnmigrated = KhalaPg.layerServices.pipe(
  Layer.provideMerge(Database.layerConfig),
  Layer.provideMerge(TopicCatalog.Default)
)

/** The durable core on the configured database, migrated and with the catalog's topics registered. */
export const layerKhala = KhalaPg.layerConfig()

/** A topic as given on the command line, dotted or enum name; names outside the v1 catalog pass as they are. */
export const topicName = (name: string) => wireNameOf(v1, name)
