/**
 * In-band token refresh (protocol.md §8 `sync:auth`) where the server accepts it: the client swaps its token on the open
 * socket, before expiry, again and again, without reconnecting. `khala serve` does not take `sync:auth` yet, so the
 * server side here is a scripted socket answering the Phoenix frames this path needs; the fallback to reconnecting
 * where the server refuses it runs against the real server in Auth.test.ts.
 */
import { describe, expect, it } from "@effect/vitest"
import type { WebSocketConstructor } from "../../src/client/Connection.js"
import { createClient } from "../../src/client/index.js"

const unsignedToken = (lifetimeMs: number, n: number) => {
  const claims = btoa(JSON.stringify({ exp: (Date.now() + lifetimeMs) / 1000, n })).replace(/=+$/, "")
  return `e30.${claims}.unsigned`
}

/**
 * A socket that answers join, subscribe, heartbeat and `sync:auth` with ok replies, and records what it was sent;
 * with `warnOnSubscribe`, it pushes `sync:token_expiring` once a subscription is answered on a connection.
 */
const scriptedServer = (warnOnSubscribe = false) => {
  const connections: Array<string | Array<string> | undefined> = []
  const warnings: Array<number> = []
  const received: Array<[event: string, payload: unknown, at: number]> = []
  class Scripted {
    readyState = 0
    onopen: (() => void) | null = null
    onmessage: ((event: { data: unknown }) => void) | null = null
    onclose: ((event: { code: number; reason: string }) => void) | null = null
    onerror = null
    warned = false
    constructor(_url: string, protocols?: string | Array<string>) {
      connections.push(protocols)
      setTimeout(() => {
        this.readyState = 1
        this.onopen?.()
      }, 1)
    }
    send(text: string) {
      const [joinRef, ref, topic, event, payload] = JSON.parse(text)
      received.push([event, payload, Date.now()])
      const response = event === "sync:subscribe"
        ? { subscription_id: "s", topics: payload.topics, current_watermarks: [] }
        : {}
      setTimeout(() =>
        this.onmessage?.({
          data: JSON.stringify([joinRef, ref, topic, "phx_reply", { status: "ok", response }])
        }), 1)
      if (warnOnSubscribe && event === "sync:subscribe" && !this.warned) {
        this.warned = true
        warnings.push(Date.now())
        const warning = { expires_at: Math.floor(Date.now() / 1000) + 4, closes_in_ms: 4000 }
        setTimeout(
          () => this.onmessage?.({ data: JSON.stringify([joinRef, null, topic, "sync:token_expiring", warning]) }),
          5
        )
      }
    }
    close() {
      this.readyState = 3
      this.onclose?.({ code: 1000, reason: "" })
    }
  }
  return { connections, received, warnings, webSocket: Scripted as unknown as WebSocketConstructor }
}

const until = async (predicate: () => boolean, timeoutMs = 10_000) => {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("timed out")
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
}

describe("in-band token refresh", () => {
  it("sends each fresh token with sync:auth before the current one expires, on the same socket", async () => {
    const server = scriptedServer()
    let issued = 0
    const client = createClient({
      url: "http://sync.test",
      token: () => unsignedToken(3000, ++issued),
      webSocket: server.webSocket,
      initialLoad: "replay",
      tokenRefresh: "in-band",
      refreshBeforeExpiryMs: 1500
    })
    client.subscribe("t")
    const auths = () => server.received.filter(([event]) => event === "sync:auth")
    await until(() => auths().length === 2)
    expect(server.connections).toHaveLength(1)
    expect(auths().map(([, payload]) => JSON.parse(atob((payload as { token: string }).token.split(".")[1]!)).n))
      .toEqual([2, 3])
    expect(client.state.getSnapshot().status).toBe("live")
    await client.close()
  }, 60_000)

  it("refreshes by the server's warning of when it closes the socket, whatever the token says of itself", async () => {
    for (const tokenRefresh of ["in-band", "reconnect"] as const) {
      const server = scriptedServer(true)
      let issued = 0
      const client = createClient({
        url: "http://sync.test",
        // an hour left by this clock: without the warning, nothing would be refreshed for some 59 minutes
        token: () => unsignedToken(3_600_000, ++issued),
        webSocket: server.webSocket,
        initialLoad: "replay",
        tokenRefresh
      })
      client.subscribe("t")
      if (tokenRefresh === "in-band") {
        await until(() => server.received.some(([event]) => event === "sync:auth"))
        expect(server.connections).toHaveLength(1)
        // the server closes 4 s after its warning: refreshed half way, not at once (a short-lived token must not
        // make every warning a refresh on the spot)
        const refreshedAt = server.received.find(([event]) => event === "sync:auth")![2]
        expect(refreshedAt - server.warnings[0]!).toBeGreaterThanOrEqual(1000)
      } else {
        // the session ends and the reconnect loop comes back with a fresh token
        await until(() => server.connections.length === 2)
        expect(server.received.some(([event]) => event === "sync:auth")).toBe(false)
      }
      expect(issued).toBe(2)
      await client.close()
    }
  }, 60_000)
})
