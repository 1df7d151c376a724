/**
 * The client's own bookkeeping, with a WebSocket that refuses every connection: states and retries, `reconnect()`,
 * `needs-auth`, shared subscriptions and filter conflicts, and `close()` settling what waits on it.
 */
import { describe, expect, it } from "@effect/vitest"
import type { WebSocketConstructor } from "../../src/client/Connection.js"
import { httpUrl, socketUrl } from "../../src/client/Connection.js"
import { createClient } from "../../src/client/index.js"
import { memoryStore } from "../../src/client/WatermarkStore.js"

/** Fails every connection asynchronously, as a refused TCP connect does; counts the attempts. */
const refusingWebSocket = () => {
  const attempts: Array<string> = []
  class Refused {
    readyState = 0
    onopen: (() => void) | null = null
    onmessage = null
    onclose: ((event: { code: number; reason: string }) => void) | null = null
    onerror: ((event: unknown) => void) | null = null
    constructor(url: string) {
      attempts.push(url)
      setTimeout(() => {
        this.readyState = 3
        this.onerror?.({ message: "connect ECONNREFUSED" })
        this.onclose?.({ code: 1006, reason: "" })
      }, 1)
    }
    send() {}
    close() {}
  }
  return { attempts, webSocket: Refused as unknown as WebSocketConstructor }
}

const until = async (predicate: () => boolean, timeoutMs = 5000) => {
  const deadline = Date.now() + timeoutMs
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error("timed out")
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}

describe("client engine", () => {
  it("goes offline with a retry time after a refused connect, and reconnect() retries at once", async () => {
    const { attempts, webSocket } = refusingWebSocket()
    const client = createClient({
      url: "https://sync.test",
      token: () => "t",
      webSocket,
      backoff: { baseMs: 60_000, maxMs: 60_000 },
      random: () => 0.5
    })
    await until(() => client.state.getSnapshot().status === "offline")
    const state = client.state.getSnapshot()
    expect(state.error).toMatchObject({ _tag: "ConnectionLost", closeCode: 1006 })
    expect(state.retryAt! - Date.now()).toBeGreaterThan(20_000)
    expect(attempts).toEqual(["wss://sync.test/socket/websocket?vsn=2.0.0"])
    client.reconnect()
    await until(() => attempts.length === 2)
    await client.close()
    expect(client.state.getSnapshot().status).toBe("closed")
  })

  it("takes the server URL in either scheme, with or without the socket path phoenix users give", () => {
    const forms = [
      "https://sync.test",
      "https://sync.test/",
      "wss://sync.test/socket",
      "wss://sync.test/socket/websocket",
      "wss://sync.test/socket/websocket?vsn=2.0.0"
    ]
    for (const url of forms) {
      expect([socketUrl(url), httpUrl(url)]).toEqual([
        "wss://sync.test/socket/websocket?vsn=2.0.0",
        "https://sync.test"
      ])
    }
    // a server mounted under a path keeps it, for the socket and hydration alike
    expect([socketUrl("http://h:4000/khala/socket"), httpUrl("ws://h:4000/khala/socket")]).toEqual([
      "ws://h:4000/khala/socket/websocket?vsn=2.0.0",
      "http://h:4000/khala"
    ])
  })

  it("is in needs-auth while the token provider gives no token", async () => {
    const { attempts, webSocket } = refusingWebSocket()
    const client = createClient({ url: "http://sync.test", token: () => "", webSocket })
    await until(() => client.state.getSnapshot().status === "needs-auth")
    expect(client.state.getSnapshot().error).toMatchObject({ _tag: "TokenUnavailable" })
    expect(attempts).toEqual([])
    await client.close()
  })

  it("shares one cache between subscriptions with the same filter and refuses another filter", async () => {
    const { webSocket } = refusingWebSocket()
    const store = memoryStore()
    await store.commit([{
      topic: "t",
      cursor: { watermark: 3, epoch: null, filter: "" },
      put: [{ docKey: "a", docVersion: 1, payload: { a: 1 }, payloadHash: null, watermark: 3 }],
      remove: [],
      replace: false
    }])
    const client = createClient({ url: "http://sync.test", token: () => "t", webSocket, store })
    const first = client.subscribe("t")
    const second = client.subscribe("t")
    expect(() => client.subscribe("t", { filter: { docKeyPrefix: "x" } })).toThrow(
      expect.objectContaining({ _tag: "FilterConflict" })
    )
    await until(() => first.get("a") !== undefined)
    expect(second.getSnapshot()).toBe(first.getSnapshot())
    first.close()
    expect(second.get("a")?.payload).toEqual({ a: 1 })
    await client.close()
    expect(() => client.subscribe("u")).toThrow(expect.objectContaining({ _tag: "ClientClosed" }))
  })

  it("settles synced() when the client closes", async () => {
    const { webSocket } = refusingWebSocket()
    const client = createClient({ url: "http://sync.test", token: () => "t", webSocket })
    const waiting = client.subscribe("t").synced().then(() => "synced", (error: unknown) => error)
    await client.close()
    expect(await waiting).toMatchObject({ _tag: "ClientClosed" })
  })
})
