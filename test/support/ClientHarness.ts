/**
 * Fixtures of the client tests: a WebSocket that records every update watermark the client received (to check the
 * wire, where the client's version check would hide a replayed row), and a counting token provider.
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
    constructor(url: string, protocols?: string | Array<string>) {
      super(url, protocols)
      this.on("message", (data: WebSocket.RawData) => {
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
