/**
 * Revocation at the edge of a runtime that mounts Khala on the memory core (protocol.md §5.7, §8): the runtime's own
 * `Revocations.revoke` closes the token's live sockets at once and refuses its new connects and hydration requests.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeJwt } from "jose"
import { Revocations } from "../../src/services/Revocations.js"
import { serveInProcess } from "../support/InProcess.js"
import { token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { openRaw, upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"

describe("revocation in a runtime on the memory core", () => {
  it.live("revoke closes the token's sockets with sync:error revoked and 1008, and refuses it; others stay", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* serveInProcess()
      const alice = yield* token({ org: "org_a", scopes: [runs], sub: "alice" })
      const carol = yield* token({ org: "org_a", scopes: [runs], sub: "carol" })
      const aliceSocket = yield* openRaw({ port: server.port, token: alice })
      const carolSocket = yield* openRaw({ port: server.port, token: carol })
      expect((yield* aliceSocket.request("j", "j", "sync:v1", "phx_join", {}))[4].status).toBe("ok")
      expect((yield* carolSocket.request("j", "j", "sync:v1", "phx_join", {}))[4].status).toBe("ok")

      yield* Effect.flatMap(
        Revocations,
        (revocations) => revocations.revoke({ tokenId: String(decodeJwt(alice).jti) }, new Date(Date.now() + 60_000))
      ).pipe(
        Effect.provide(server.services)
      )
      yield* waitUntil("alice's socket closed", () => aliceSocket.closed() !== undefined, { timeoutMs: 5000 })
      expect(aliceSocket.closed()?.code).toBe(1008)
      expect(aliceSocket.pushes("sync:error")).toEqual([
        { code: "unauthorized", reason: "revoked", message: "token has been revoked" }
      ])
      const refused = yield* upgradeOutcome({ port: server.port, token: alice })
      expect(refused).toMatchObject({ status: 401, body: "unauthorized: token has been revoked\n" })
      const hydration = yield* Effect.promise(() =>
        fetch(`http://127.0.0.1:${server.port}/sync/v1/topics/${runs}/documents`, {
          headers: { authorization: `Bearer ${alice}` }
        }).then(async (response) => ({ status: response.status, body: await response.json() }))
      )
      expect(hydration).toEqual({
        status: 401,
        body: { code: "unauthorized", reason: "revoked", message: "token has been revoked" }
      })
      expect((yield* carolSocket.barrier("still-here"))[4].status).toBe("ok")
      expect(carolSocket.closed()).toBe(undefined)
    })))
})
