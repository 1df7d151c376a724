/**
 * One WebSocket to the server in a scope: opened with the token in the `authToken` subprotocol (protocol.md §5; it keeps the
 * token out of URLs and their logs), closed when the scope closes. Socket-level heartbeat replies are answered here;
 * every other frame goes, in arrival order, to the session's handler.
 *
 * Works with the platform `WebSocket` (browsers, Node ≥ 22) and with the `ws` package's (Node 20), which follows the
 * same interface.
 *
 * @since 0.1.0
 */
import * as Micro from "effect/Micro"
import { CloseCode } from "./Backoff.js"
import { ConnectionLost, Unauthorized } from "./Errors.js"
import type { InboundFrame } from "./Wire.js"
import { decodeFrame, decodeReply, Phoenix } from "./Wire.js"

/**
 * The part of the WebSocket interface the client uses.
 *
 * @since 0.1.0
 */
export interface WebSocketLike {
  readonly readyState: number
  onopen: ((event: any) => void) | null
  onmessage: ((event: { readonly data: unknown }) => void) | null
  onclose: ((event: { readonly code: number; readonly reason: string }) => void) | null
  onerror: ((event: any) => void) | null
  send(data: string): void
  close(code?: number, reason?: string): void
}

/**
 * A WebSocket constructor: `globalThis.WebSocket`, or `ws`'s default export.
 *
 * @since 0.1.0
 */
export type WebSocketConstructor = new(url: string, protocols?: string | Array<string>) => WebSocketLike

const open = 1

/**
 * @since 0.1.0
 */
export interface Connection {
  /** Sends a text frame; a frame sent on a closing socket is dropped (the session is ending anyway). */
  readonly send: (text: string) => void
  /** Fails when the socket closes, with the close code and reason. */
  readonly closed: Micro.Micro<never, ConnectionLost>
  /** Waits for the reply to the socket heartbeat sent with `ref`. */
  readonly heartbeatReply: (ref: string) => Micro.Micro<void>
  /** Closes the socket now with the given reason (1000: the client chose to). */
  readonly close: (reason: string) => void
}

/**
 * The server's base URL, without the Phoenix socket path a `phoenix` user may have given (`/socket`,
 * `/socket/websocket`), a query or trailing slashes: socket and hydration paths are appended to it.
 */
const serverBase = (url: string): string =>
  url.replace(/[?#].*$/, "").replace(/\/+$/, "").replace(/\/socket(?:\/websocket)?$/, "")

/**
 * The socket URL of a server URL given in either scheme: `http(s)` becomes `ws(s)`, and the Phoenix socket path is
 * appended.
 *
 * @since 0.1.0
 */
export const socketUrl = (url: string): string =>
  `${serverBase(url).replace(/^http(s?):/i, "ws$1:")}/socket/websocket?vsn=2.0.0`

/**
 * The HTTP base of hydration (protocol.md §6) for a server URL given in either scheme: on the same host and port as
 * the socket.
 *
 * @since 0.1.0
 */
export const httpUrl = (url: string): string => serverBase(url).replace(/^ws(s?):/i, "http$1:")

const bearerProtocol = (token: string) =>
  "base64url.bearer.phx." + btoa(token).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")

// `ws` reports a refused upgrade as an error whose message carries the HTTP status; browsers tell nothing.
const refusedStatus = (event: unknown): number | undefined => {
  const message = (event as { message?: unknown } | null)?.message
  const match = typeof message === "string" ? /Unexpected server response: (\d{3})/.exec(message) : null
  return match === null ? undefined : Number(match[1])
}

/**
 * Opens the socket; fails with `Unauthorized` when the upgrade is refused with 401/403 (where the platform says so) and
 * with `ConnectionLost` otherwise. `onFrame` returns false when it cannot take a frame: the socket is then closed, and
 * the session resumes later from its persisted watermarks.
 *
 * @since 0.1.0
 */
export const connect = (options: {
  readonly url: string
  readonly token: string
  readonly webSocket: WebSocketConstructor
  readonly onFrame: (frame: InboundFrame) => boolean
}): Micro.Micro<Connection, ConnectionLost | Unauthorized, Micro.MicroScope> =>
  Micro.gen(function*() {
    let lost: ConnectionLost | undefined
    let onLost: ((error: ConnectionLost) => void) | undefined
    const heartbeatWaiters = new Map<string, () => void>()
    const loseWith = (error: ConnectionLost) => {
      if (lost !== undefined) return
      lost = error
      onLost?.(error)
    }

    const socket = yield* Micro.acquireRelease(
      Micro.async<WebSocketLike, ConnectionLost | Unauthorized>((resume) => {
        let refused: number | undefined
        let ws: WebSocketLike
        try {
          ws = new options.webSocket(socketUrl(options.url), ["phoenix", bearerProtocol(options.token)])
        } catch (cause) {
          return resume(Micro.fail(new ConnectionLost({ reason: `cannot open a socket: ${String(cause)}` })))
        }
        ws.onerror = (event) => {
          refused ??= refusedStatus(event)
        }
        ws.onclose = (event) => {
          resume(
            refused === 401 || refused === 403
              ? Micro.fail(new Unauthorized({ reason: `upgrade refused with HTTP ${refused}` }))
              : Micro.fail(new ConnectionLost({ reason: "could not connect", closeCode: event.code }))
          )
        }
        ws.onopen = () => resume(Micro.succeed(ws))
        return Micro.sync(() => {
          ws.onopen = ws.onclose = ws.onerror = null
          ws.close(CloseCode.normal)
        })
      }),
      (ws) =>
        Micro.sync(() => {
          ws.onmessage = ws.onclose = ws.onerror = null
          if (ws.readyState <= open) ws.close(CloseCode.normal, "client closing")
        })
    )

    socket.onclose = (event) =>
      loseWith(new ConnectionLost({ reason: event.reason || "socket closed", closeCode: event.code }))
    socket.onerror = () => undefined
    socket.onmessage = (event) => {
      if (typeof event.data !== "string") return
      const frame = decodeFrame(event.data)
      if (frame === undefined) {
        socket.close(CloseCode.normal, "malformed frame")
        return loseWith(new ConnectionLost({ reason: "the server sent a malformed frame" }))
      }
      if (frame.topic === Phoenix.topic) {
        // Heartbeat replies skip the session's queue: a busy session must not read as a dead connection.
        if (frame.event === Phoenix.reply && frame.ref !== null && decodeReply(frame.payload) !== undefined) {
          heartbeatWaiters.get(frame.ref)?.()
        }
        return
      }
      if (!options.onFrame(frame)) {
        socket.close(CloseCode.normal, "client fell behind")
        loseWith(new ConnectionLost({ reason: "the client fell behind the socket; resuming from its watermarks" }))
      }
    }

    return {
      send: (text) => {
        if (socket.readyState === open) socket.send(text)
      },
      closed: Micro.async<never, ConnectionLost>((resume) => {
        if (lost !== undefined) return resume(Micro.fail(lost))
        onLost = (error) => resume(Micro.fail(error))
        return Micro.sync(() => {
          onLost = undefined
        })
      }),
      heartbeatReply: (ref) =>
        Micro.async<void>((resume) => {
          heartbeatWaiters.set(ref, () => resume(Micro.void))
          return Micro.sync(() => {
            heartbeatWaiters.delete(ref)
          })
        }),
      close: (reason) => {
        if (socket.readyState <= open) socket.close(CloseCode.normal, reason)
        loseWith(new ConnectionLost({ reason }))
      }
    } satisfies Connection
  })
