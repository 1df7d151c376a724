import type { ConfigError } from "effect"
import { Effect, Layer } from "effect"
import * as Hub from "../engine/Hub.js"
import * as Publisher from "../engine/Publisher.js"
import * as Wakeups from "../engine/Wakeups.js"
import { RetentionClass } from "../protocol/gen/openagents/sync/v1/topics_pb.js"
import type { TopicInfo } from "../protocol/TopicCatalog.js"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { Appender } from "../services/Appender.js"
import type { Documents } from "../services/Documents.js"
import type { HeadSignals } from "../services/HeadSignals.js"
import type { Hub as HubService } from "../services/Hub.js"
import type { Journal } from "../services/Journal.js"
import * as Metrics from "../services/Metrics.js"
import type { Publisher as PublisherService } from "../services/Publisher.js"
import type { RetentionStore } from "../services/RetentionStore.js"
import { Sequencer } from "../services/Sequencer.js"
import type { StorageError } from "../services/StorageError.js"
import type { TopicRegistration } from "../services/Topic.js"
import * as Tracing from "../services/Tracing.js"
import type { Wakeups as WakeupsService } from "../services/Wakeups.js"

/** Every service Khala's core offers a runtime. */
export type KhalaServices =
  | Sequencer
  | Journal
  | Documents
  | RetentionStore
  | PublisherService
  | WakeupsService
  | HubService

/** What a storage backend implements: the same service tags for Postgres, the embedded database and memory. */
export type Storage = Sequencer | Journal | Documents | RetentionStore | Appender

/**
 * How a catalog topic is recorded in the sequencer: by dotted name, with its retention class by name, and its pointer
 * mode when the catalog declares one.
 */
export const registration = (topic: TopicInfo): TopicRegistration => ({
  topic: topic.wireName,
  retentionClass: (RetentionClass[topic.retentionClass] ?? "UNSPECIFIED").toLowerCase(),
  ...(topic.pointerMode === undefined ? {} : { pointerMode: topic.pointerMode })
})

/** Registers every topic of the catalog, so that `khala.publish` knows them (unknown topics are refused). */
export const registerCatalog: Effect.Effect<void, StorageError, Sequencer | TopicCatalog> = Effect.gen(function*() {
  const catalog = yield* TopicCatalog
  const sequencer = yield* Sequencer
  yield* sequencer.register(catalog.topics.map(registration))
})

/**
 * The engine over a storage backend: wake-ups, the hub and the publisher, whatever stores the journal. The storage
 * stays visible in the output, so a runtime reaches its services too.
 */
export const engine = <E, R>(
  storage: Layer.Layer<Storage, E, R>
): Layer.Layer<KhalaServices | Appender, E | ConfigError.ConfigError, R | HeadSignals> => {
  const wakeups = Wakeups.layer.pipe(Layer.provideMerge(storage))
  // KHALA_METRICS is read first, so that nothing records when it is off
  return Layer.mergeAll(Hub.layer, Publisher.layer).pipe(
    Layer.provideMerge(wakeups),
    Layer.provideMerge(Layer.merge(Metrics.layerConfig, Tracing.layerConfig))
  )
}
