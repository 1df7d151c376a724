/**
 * Fixtures of the client tests: a WebSocket that records every update watermark the client received (to check the
 * wire, where the client's version check would hide a replayed row), a `fetch` that records every hydration request
 * (and can fail the next few, as a server under load would), and a counting token provider.
 */
import { Effect } from "effect"
import type pg from "pg"
import WebSocket from "ws"
import type { WebSocketConstructor } from "../../src/client/Connection.js"
import { signToken, type TokenOptions } from "./Khala.js"

/** Per topic, every update watermark received on the wire, in arrival order, across reconnects. */
export type WireLog = Map<string, Array<number>>

export const recordingWebSocket = (log: WireLog): WebSocketConstructor =>
  class RecordingWebSocket extends WebSocket {
    private closedByClient = false
    override close(code?: number, reason?: string | Buffer) {
      this.closedByClient = true
      super.close(code, reason)
    }
    constructor(url: string, protocols?: string | Array<string>) {
      super(url, protocols)
      this.on("message", (data: WebSocket.RawData) => {
        // frames that reach a socket its client has closed (during the close handshake) are not the client's
        if (this.closedByClient) return
        const frame = JSON.parse(data.toString())
        if (frame[3] !== "sync:update_batch") return
        for (const update of frame[4].updates) {
          const list = log.get(update.topic) ?? []
          list.push(update.watermark)
          log.set(update.topic, list)
        }
      })
    }
  } as unknown as WebSocketConstructor

/** What `recordingFetch` saw, and its failure injection. */
export interface FetchLog {
  /** Every request, as `METHOD path?query` (the origin left out), in order; injected failures included. */
  readonly requests: Array<string>
  /** Answers the next `n` requests with 503 `internal` and `Retry-After: 0`, without reaching the server. */
  readonly failNext: (n: number) => void
  readonly fetch: typeof globalThis.fetch
}

/** The platform `fetch`, recording each request the client makes to the server's hydration endpoints. */
export const recordingFetch = (): FetchLog => {
  const requests: Array<string> = []
  let failures = 0
  const fetch = (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(typeof input === "string" || input instanceof URL ? input : input.url)
    requests.push(`${init?.method ?? "GET"} ${url.pathname}${url.search}`)
    if (failures > 0) {
      failures--
      return new Response(JSON.stringify({ code: "internal", message: "injected failure" }), {
        status: 503,
        headers: { "content-type": "application/json", "retry-after": "0" }
      })
    }
    return globalThis.fetch(input, init)
  }) as typeof globalThis.fetch
  return { requests, failNext: (n) => void (failures = n), fetch }
}

/** A token provider that signs a fresh token per call and counts the calls. */
export const countingTokens = (options: TokenOptions) => {
  const provider = Object.assign(
    () => {
      provider.calls++
      return signToken(options)
    },
    { calls: 0 }
  )
  return provider
}

/** `select khala.remove(...)`: deletes a document from SQL, keeping a tombstone at `docVersion`; the watermark. */
export const removeDocument = (
  client: pg.Client,
  options: { readonly topic?: string; readonly docKey: string; readonly docVersion: number; readonly orgId?: string }
) =>
  Effect.promise(() =>
    client.query<{ w: string | null }>("select khala.remove($1, $2, $3, $4) as w", [
      options.topic ?? "runtime.run_summaries",
      options.docKey,
      options.docVersion,
      options.orgId ?? "org_a"
    ])
  ).pipe(Effect.map((result) => (result.rows[0]?.w == null ? null : Number(result.rows[0].w))))
