/**
 * What a runtime composes to mirror the journal to a sink of its own and to audit the read model (outbox.md): the
 * cursors' storage, the forwarder, the webhook sink, and the read model's hashes for an audit.
 */
import type { SqlClient } from "@effect/sql"
import type { Layer } from "effect"
import type { DocumentHashes } from "../services/Audit.js"
import type { OutboxStore } from "../services/OutboxStore.js"
import * as DocumentHashesMemory from "../storage/memory/DocumentHashesMemory.js"
import type { MemoryStore } from "../storage/memory/MemoryStore.js"
import * as OutboxStoreMemory from "../storage/memory/OutboxStoreMemory.js"
import * as DocumentHashesPg from "../storage/postgres/DocumentHashesPg.js"
import * as OutboxStorePg from "../storage/postgres/OutboxStorePg.js"

export { auditTopic, mismatchesTotal } from "../engine/Audit.js"
export type { AuditReport, Mismatch, MismatchKind } from "../engine/Audit.js"
export { run } from "../engine/Outbox.js"
export type { OutboxOptions } from "../engine/Outbox.js"
export { makeWebhook } from "../engine/OutboxWebhook.js"

/** Outbox cursors on a Postgres server shared by several Khala processes (one forwards per sink at a time). */
export const storePg: Layer.Layer<OutboxStore, never, SqlClient.SqlClient> = OutboxStorePg.layer

/** Outbox cursors on a database only this process opens (the embedded one). */
export const storeSingleProcess: Layer.Layer<OutboxStore, never, SqlClient.SqlClient> = OutboxStorePg.layerSingleProcess

/** Outbox cursors in the memory store, with the same retention rule. */
export const storeMemory: Layer.Layer<OutboxStore, never, MemoryStore> = OutboxStoreMemory.layerMemory

/** The read model's hashes for an audit, on Postgres. */
export const documentHashesPg: Layer.Layer<DocumentHashes, never, SqlClient.SqlClient> = DocumentHashesPg.layer

/** The read model's hashes for an audit, in the memory store. */
export const documentHashesMemory: Layer.Layer<DocumentHashes, never, MemoryStore> = DocumentHashesMemory.layerMemory
