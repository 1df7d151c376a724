/**
 * The Khala client for browsers and Node: follows topics, keeps their documents in a cache that persists with its
 * watermarks, and resumes, reconnects and re-hydrates by itself (protocol.md §11).
 *
 * `createClient` is the Promise/callback client; `KhalaClient` the Effect service over the same core.
 *
 * @since 0.1.0
 */
export { type BackoffOptions, reconnectDelay } from "./Backoff.js"
export { type Client, createClient, type TopicSubscription } from "./Client.js"
export type { WebSocketConstructor, WebSocketLike } from "./Connection.js"
export { type Document, type DocumentFilter, type TopicChanges } from "./Document.js"
export type { ConnectionState, ConnectionStatus, Engine, Subscription } from "./Engine.js"
export { start } from "./Engine.js"
export {
  ClientClosed,
  ConnectionLost,
  FilterConflict,
  ForbiddenTopic,
  StoreFailed,
  TokenUnavailable,
  Unauthorized,
  UpgradeRequired
} from "./Errors.js"
export type { ExternalStore } from "./ExternalStore.js"
export { HydrationFailed } from "./Hydration.js"
export { type IndexedDbGlobals, indexedDbStore } from "./IndexedDbStore.js"
export { KhalaClient, type KhalaClientService, type TopicStream } from "./KhalaClient.js"
export { localStorageStore, type StorageLike } from "./LocalStorageStore.js"
export type { ClientOptions } from "./Settings.js"
export type { ChangeListener, TopicStatus } from "./TopicCache.js"
export { type Cursor, memoryStore, type StoredTopic, type TopicCommit, type WatermarkStore } from "./WatermarkStore.js"
