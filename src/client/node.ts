/**
 * The client for Node: everything of `khala/client`, with `ws` as the WebSocket where the runtime has none (Node 20),
 * and a file store.
 *
 * ```ts
 * import { createClient, fileStore } from "khala/client/node"
 * const client = createClient({ url: "http://127.0.0.1:4000", token: () => mintToken(), store: fileStore(".khala") })
 * ```
 *
 * @since 0.1.0
 */
import WebSocket from "ws"
import type { Client } from "./Client.js"
import { createClient as createBrowserClient } from "./Client.js"
import type { WebSocketConstructor } from "./Connection.js"
import type { Engine } from "./Engine.js"
import { start as startEngine } from "./Engine.js"
import { KhalaClient as BrowserKhalaClient } from "./KhalaClient.js"
import type { ClientOptions } from "./Settings.js"

export { fileStore } from "./FileStore.js"
export * from "./index.js"

const withWebSocket = (options: ClientOptions): ClientOptions => ({
  ...options,
  webSocket: options.webSocket ??
    (globalThis as { WebSocket?: WebSocketConstructor }).WebSocket ??
    (WebSocket as unknown as WebSocketConstructor)
})

/**
 * `createClient` of `khala/client`, with `ws` when the runtime has no WebSocket.
 *
 * @since 0.1.0
 */
export const createClient = (options: ClientOptions): Client => createBrowserClient(withWebSocket(options))

/**
 * `start` of `khala/client`, with `ws` when the runtime has no WebSocket.
 *
 * @since 0.1.0
 */
export const start = (options: ClientOptions): Engine => startEngine(withWebSocket(options))

/**
 * `KhalaClient` of `khala/client`, whose `make` and `layer` use `ws` when the runtime has no WebSocket.
 *
 * @since 0.1.0
 */
export class KhalaClient extends BrowserKhalaClient {
  static override readonly make = (options: ClientOptions) => BrowserKhalaClient.make(withWebSocket(options))
  static override readonly layer = (options: ClientOptions) => BrowserKhalaClient.layer(withWebSocket(options))
}
