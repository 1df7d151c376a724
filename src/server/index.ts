/**
 * Khala's delivery server, for a runtime that serves its clients from its own process and port.
 *
 * - `KhalaServer.router` — the Phoenix socket (`/socket/websocket`), hydration, `/healthz`, `/readyz`, `/statusz` and
 *   `/metrics` as an `@effect/platform` router to mount beside the runtime's own routes; `KhalaServer.layerSocket(settings)` is the
 *   socket endpoint behind it.
 * - `KhalaServer.layer({ port, ...settings })` — the same on an HTTP server of its own; `KhalaServer.layerConfig`
 *   reads the address and settings from the environment, as `khala serve` does.
 * - `AuthJose` — `TokenVerifier` and `TokenSigner` over an HS256 keyring (`AuthJose.layer(keys)`).
 *
 * @since 0.1.0
 */
export * as AuthJose from "../auth/AuthJose.js"
export { TokenSigner, TokenVerifier, Unauthorized } from "../services/TokenVerifier.js"
export type { Principal } from "../services/TokenVerifier.js"
export * as KhalaServer from "./KhalaServer.js"
export { ServerConfig, ServerConfigError } from "./ServerConfig.js"
export type { ServerSettings } from "./ServerConfig.js"
export { SyncSocket } from "./SyncSocket.js"
