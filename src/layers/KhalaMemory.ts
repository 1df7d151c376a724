import type { ConfigError } from "effect"
import { Layer } from "effect"
import type { Options as TopicCatalogOptions, TopicCatalog, TopicCatalogError } from "../protocol/TopicCatalog.js"
import { layer as TopicCatalogLayer } from "../protocol/TopicCatalog.js"
import { HeadSignals } from "../services/HeadSignals.js"
import type { Revocations } from "../services/Revocations.js"
import type { StorageError } from "../services/StorageError.js"
import * as AppenderMemory from "../storage/memory/AppenderMemory.js"
import * as DocumentsMemory from "../storage/memory/DocumentsMemory.js"
import * as JournalMemory from "../storage/memory/JournalMemory.js"
import * as MemoryStore from "../storage/memory/MemoryStore.js"
import * as RetentionStoreMemory from "../storage/memory/RetentionStoreMemory.js"
import * as RevocationsMemory from "../storage/memory/RevocationsMemory.js"
import * as SequencerMemory from "../storage/memory/SequencerMemory.js"
import type { KhalaServices } from "./Core.js"
import { engine, registerCatalog } from "./Core.js"

/** The memory storage over a `MemoryStore`. */
export const storage = Layer.mergeAll(
  SequencerMemory.layerMemory,
  JournalMemory.layerMemory,
  DocumentsMemory.layerMemory,
  RetentionStoreMemory.layerMemory,
  AppenderMemory.layerMemory
)

/**
 * The durable core in memory, with the semantics of the Postgres layers (one contract suite runs against both): for
 * a runtime's own unit tests, and for Khala's. `MemoryStore` is exposed for transactions and failure injection.
 */
export const layerWith: Layer.Layer<
  KhalaServices | Revocations | MemoryStore.MemoryStore,
  StorageError | ConfigError.ConfigError,
  TopicCatalog
> = Layer
  .effectDiscard(registerCatalog)
  .pipe(
    Layer.provideMerge(engine(storage)),
    Layer.provide(HeadSignals.none),
    Layer.provideMerge(MemoryStore.layer),
    Layer.merge(RevocationsMemory.layerMemory)
  )

/** The memory core with the v1 topic catalog extended by `catalog`, for a runtime's unit tests. */
export const layer = (
  catalog: TopicCatalogOptions = {}
): Layer.Layer<
  KhalaServices | Revocations | MemoryStore.MemoryStore | TopicCatalog,
  StorageError | TopicCatalogError | ConfigError.ConfigError
> => layerWith.pipe(Layer.provideMerge(TopicCatalogLayer(catalog)))
