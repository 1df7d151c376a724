import type { ConfigError } from "effect"
import { Layer } from "effect"
import type { Options as TopicCatalogOptions, TopicCatalogError } from "../protocol/TopicCatalog.js"
import { layer as TopicCatalogLayer, TopicCatalog } from "../protocol/TopicCatalog.js"
import type { StorageError } from "../services/StorageError.js"
import * as DocumentsMemory from "./DocumentsMemory.js"
import * as JournalMemory from "./JournalMemory.js"
import type { KhalaServices } from "./KhalaPg.js"
import { delivery, registerCatalog } from "./KhalaPg.js"
import * as MemoryStore from "./MemoryStore.js"
import * as PublisherMemory from "./PublisherMemory.js"
import * as SequencerMemory from "./SequencerMemory.js"

/**
 * The durable core in memory, with the semantics of the Postgres layers (one contract suite runs against both): for
 * a runtime's own unit tests, and for Khala's. `MemoryStore` is exposed for transactions and failure injection.
 */
export const layerWith: Layer.Layer<
  KhalaServices | MemoryStore.MemoryStore,
  StorageError | ConfigError.ConfigError,
  TopicCatalog
> = Layer
  .effectDiscard(registerCatalog)
  .pipe(
    Layer.provideMerge(delivery(
      Layer.mergeAll(SequencerMemory.layerMemory, JournalMemory.layerMemory, DocumentsMemory.layerMemory),
      PublisherMemory.layerMemory
    )),
    Layer.provideMerge(MemoryStore.layer)
  )

/** The memory core with the v1 topic catalog extended by `catalog`, for a runtime's unit tests. */
export const layer = (
  catalog: TopicCatalogOptions = {}
): Layer.Layer<
  KhalaServices | MemoryStore.MemoryStore | TopicCatalog,
  StorageError | TopicCatalogError | ConfigError.ConfigError
> =>
  layerWith.pipe(Layer.provideMerge(TopicCatalogLayer(catalog)))
