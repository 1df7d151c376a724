/**
 * Khala: a sync engine a runtime composes in process. The runtime publishes read-model documents; Khala keeps them
 * with a per-topic, densely numbered journal in the runtime's Postgres and delivers them to clients.
 *
 * - `KhalaPg.layer()` — the services over the runtime's own `SqlClient` (publishes join its transactions);
 *   `KhalaPg.layerConfig()` — over `DATABASE_URL`, or the embedded database without it.
 * - `KhalaMemory.layer()` — the same services in memory, for the runtime's unit tests.
 * - `Publisher`, `Journal`, `Documents`, `Sequencer` — the service tags.
 *
 * @since 0.1.0
 */
export { Documents } from "./services/Documents.js"
export type { Document, DocumentPage, ListedDocument } from "./services/Documents.js"
export { Journal, StaleCursor } from "./services/Journal.js"
export type { JournalPage, JournalRow, PruneResult } from "./services/Journal.js"
export { Appended, InvalidUpdate, NotNewer, Publisher, PublishUpdate } from "./services/Publisher.js"
export type { PublishError, PublishOutcome } from "./services/Publisher.js"
export { Sequencer } from "./services/Sequencer.js"
export { StorageError } from "./services/StorageError.js"
export { UnknownTopic, Watermark } from "./services/Topic.js"
export type { TopicPosition, TopicRegistration } from "./services/Topic.js"

export * as Database from "./layers/Database.js"
export * as KhalaMemory from "./layers/KhalaMemory.js"
export * as KhalaPg from "./layers/KhalaPg.js"
export * as Outbox from "./layers/Outbox.js"
export { TopicCatalog } from "./protocol/TopicCatalog.js"
export { DocumentHashes, LegacyReader, LegacyReadError } from "./services/Audit.js"
export type { DocumentHash, LegacyDocument } from "./services/Audit.js"
export { OutboxDeliveryError, OutboxSink } from "./services/OutboxSink.js"
export { OutboxStore } from "./services/OutboxStore.js"
export type { OutboxCursor } from "./services/OutboxStore.js"
export * as EmbeddedPostgres from "./storage/embedded/EmbeddedPostgres.js"
export { MemoryStore } from "./storage/memory/MemoryStore.js"
export { migrate, migrations } from "./storage/postgres/Migrations.js"
