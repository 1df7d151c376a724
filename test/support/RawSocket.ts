/**
 * A plain `ws` client speaking Phoenix v2 frames by hand, for tests that send what no well-behaved client sends
 * (malformed frames, stale join refs) or that need the socket itself (pausing reads, close codes, HTTP status of
 * a refused upgrade).
 */
import { Effect } from "effect"
import type { Scope } from "effect"
import WebSocket from "ws"
import { waitUntil } from "./PhoenixClient.js"

/** A received frame, `[join_ref, ref, topic, event, payload]`. */
export type RawFrame = [string | null, string | null, string, string, any]

export interface RawSocket {
  readonly ws: WebSocket
  /** Every text frame received, parsed. */
  readonly frames: Array<RawFrame>
  /** Set once the socket closed. */
  readonly closed: () => { readonly code: number; readonly reason: string } | undefined
  readonly sendText: (text: string) => Effect.Effect<void>
  readonly send: (frame: ReadonlyArray<unknown>) => Effect.Effect<void>
  /** Waits for a frame matching `predicate` among those from index `from` on; returns it. */
  readonly waitForFrame: (
    label: string,
    predicate: (frame: RawFrame) => boolean,
    options?: { readonly from?: number; readonly timeoutMs?: number }
  ) => Effect.Effect<RawFrame>
  /** Sends a frame and waits for the `phx_reply` with its ref. */
  readonly request: (
    joinRef: string | null,
    ref: string,
    topic: string,
    event: string,
    payload: unknown
  ) => Effect.Effect<RawFrame>
  /** Sends a `phoenix` heartbeat with `ref` and waits for its reply: every frame sent before it was handled. */
  readonly barrier: (ref: string) => Effect.Effect<RawFrame>
  /** The payloads of pushes of an event. */
  readonly pushes: (event: string) => Array<any>
}

export interface RawOptions {
  readonly port: number
  readonly token?: string
  readonly protocols?: ReadonlyArray<string>
  /** Query string after `vsn=2.0.0` (without `&`); default `token=<token>` when a token is given. */
  readonly query?: string
  /** The `Origin` header, as a browser sends it; none by default. */
  readonly origin?: string
}

const clientOptions = (options: RawOptions) => (options.origin === undefined ? {} : { origin: options.origin })

export const socketUrl = (options: RawOptions) => {
  const query = options.query ?? (options.token !== undefined ? `token=${encodeURIComponent(options.token)}` : "")
  return `ws://127.0.0.1:${options.port}/socket/websocket?vsn=2.0.0${query === "" ? "" : `&${query}`}`
}

/** Opens a raw socket (dies if the upgrade is refused); the scope terminates it. */
export const openRaw = (options: RawOptions): Effect.Effect<RawSocket, never, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<RawSocket>((resumeOnce) => {
      let settled = false
      const resume = (effect: Effect.Effect<RawSocket>) => {
        if (settled) return
        settled = true
        resumeOnce(effect)
      }
      const ws = new WebSocket(
        socketUrl(options),
        options.protocols ? [...options.protocols] : [],
        clientOptions(options)
      )
      const frames: Array<RawFrame> = []
      let closed: { code: number; reason: string } | undefined
      ws.on("message", (data) => {
        try {
          frames.push(JSON.parse(data.toString()))
        } catch {
          frames.push([null, null, "<unparsable>", "<unparsable>", data.toString()])
        }
      })
      ws.on("close", (code, reason) => (closed = { code, reason: reason.toString() }))
      ws.on("error", (error) => resume(Effect.die(error)))
      ws.on("unexpected-response", (_req, res) => resume(Effect.die(new Error(`upgrade refused: ${res.statusCode}`))))

      const waitForFrame: RawSocket["waitForFrame"] = (label, predicate, opts = {}) =>
        Effect.gen(function*() {
          const from = opts.from ?? 0
          const find = () => frames.slice(from).find(predicate)
          yield* waitUntil(label, () => find() !== undefined, {
            timeoutMs: opts.timeoutMs ?? 10_000,
            detail: () => ({ closed, frames: frames.slice(-10) })
          })
          return find()!
        })
      const sendText = (text: string) => Effect.sync(() => ws.send(text))
      const request: RawSocket["request"] = (joinRef, ref, topic, event, payload) =>
        Effect.gen(function*() {
          const from = frames.length
          yield* sendText(JSON.stringify([joinRef, ref, topic, event, payload]))
          return yield* waitForFrame(`reply to ${event} (ref ${ref})`, (f) => f[3] === "phx_reply" && f[1] === ref, {
            from
          })
        })
      const raw: RawSocket = {
        ws,
        frames,
        closed: () => closed,
        sendText,
        send: (frame) => sendText(JSON.stringify(frame)),
        waitForFrame,
        request,
        barrier: (ref) => request(null, ref, "phoenix", "heartbeat", {}),
        pushes: (event) => frames.filter((f) => f[3] === event && f[1] === null).map((f) => f[4])
      }
      ws.on("open", () => resume(Effect.succeed(raw)))
    }),
    (raw) => Effect.sync(() => raw.ws.terminate())
  )

/**
 * Attempts an upgrade and reports its outcome: the HTTP status of a refused upgrade (`unexpected-response`), or
 * `"open"` (with the negotiated subprotocol) when the socket opened.
 */
export const upgradeOutcome = (options: RawOptions) =>
  Effect.async<{
    readonly status: number | "open"
    readonly protocol?: string
    readonly body?: string
    readonly headers?: Record<string, string | Array<string> | undefined>
  }>((resume) => {
    const ws = new WebSocket(
      socketUrl(options),
      options.protocols ? [...options.protocols] : [],
      clientOptions(options)
    )
    ws.on("unexpected-response", (_req, res) => {
      let body = ""
      res.on("data", (chunk) => (body += chunk))
      res.on("end", () => {
        resume(Effect.succeed({ status: res.statusCode ?? 0, body, headers: res.headers }))
        ws.terminate()
      })
    })
    ws.on("open", () => {
      resume(Effect.succeed({ status: "open", protocol: ws.protocol }))
      ws.terminate()
    })
    ws.on("error", () => undefined)
  }).pipe(
    Effect.timeoutFail({ duration: "10 seconds", onTimeout: () => new Error("upgrade did not finish") }),
    Effect.orDie
  )
