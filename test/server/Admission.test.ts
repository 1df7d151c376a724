/**
 * What one server admits (I9): at most `maxSockets` sockets and `maxPendingUpgrades` upgrades being authorized at
 * once, each further upgrade answered 503 with `Retry-After`; and an upgrade whose request never completes is cut
 * off by the HTTP server's headers timeout instead of being held open.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Effect, Fiber, Layer } from "effect"
import { createConnection } from "node:net"
import { TokenVerifier } from "../../src/services/TokenVerifier.js"
import { authLayer, serveInProcess } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { openRaw, upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"

describe("admission", () => {
  it.live("beyond maxSockets an upgrade is answered 503 with Retry-After; a freed place is taken again", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ settings: { maxSockets: 2 } })
      const jwt = yield* token({ org: "org_a", scopes: [runs] })
      const first = yield* openRaw({ port: server.port, token: jwt })
      yield* openRaw({ port: server.port, token: jwt })
      const refused = yield* upgradeOutcome({ port: server.port, token: jwt })
      expect(refused.status).toBe(503)
      expect(Number(refused.headers?.["retry-after"])).toBeGreaterThan(0)
      first.ws.close()
      yield* waitUntil("the first socket to be closed", () => first.closed() !== undefined)
      const again = yield* upgradeOutcome({ port: server.port, token: jwt }).pipe(
        Effect.repeat({ until: (o) => o.status === "open", times: 50 })
      )
      expect(again.status).toBe("open")
    })))

  it.live("beyond maxPendingUpgrades an upgrade is answered 503 with Retry-After", () =>
    Effect.scoped(Effect.gen(function*() {
      // a verifier that holds the first upgrade until the test lets it go
      const gate = yield* Deferred.make<void>()
      let calls = 0
      const slow = Layer.effect(
        TokenVerifier,
        Effect.map(TokenVerifier, (inner) => ({
          verify: (jwt: string) =>
            Effect.zipRight(calls++ === 0 ? Deferred.await(gate) : Effect.void, inner.verify(jwt))
        }))
      ).pipe(Layer.provide(authLayer))
      const server = yield* serveInProcess({ settings: { maxPendingUpgrades: 1 }, verifier: slow })
      const jwt = yield* token({ org: "org_a", scopes: [runs] })
      const held = yield* Effect.fork(upgradeOutcome({ port: server.port, token: jwt }))
      yield* waitUntil("the first upgrade to be held", () => calls === 1)
      const refused = yield* upgradeOutcome({ port: server.port, token: jwt })
      expect(refused.status).toBe(503)
      expect(Number(refused.headers?.["retry-after"])).toBeGreaterThan(0)
      yield* Deferred.succeed(gate, undefined)
      expect((yield* Fiber.join(held)).status).toBe("open")
    })))

  it.live("an upgrade whose request head never completes is cut off after the headers timeout", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess({ http: { headersTimeout: 1000 } })
      let closed = false
      const socket = createConnection({ host: "127.0.0.1", port: server.port }, () => {
        socket.write("GET /socket/websocket?vsn=2.0.0 HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n")
      })
      socket.on("close", () => (closed = true))
      // read whatever the server answers, so that its close is seen
      socket.resume()
      socket.on("error", () => undefined)
      yield* Effect.addFinalizer(() => Effect.sync(() => socket.destroy()))
      yield* waitUntil("the half-sent upgrade to be cut off", () => closed, { timeoutMs: 10_000 })
    })))
})
