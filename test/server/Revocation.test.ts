/**
 * Revocation end to end (protocol.md §5.7, §8): two `khala serve` nodes on one database and `khala revoke` run as a
 * process of its own. A revoked token is refused at the upgrade and by hydration on every node, its live sockets get
 * `sync:error {code: "unauthorized", reason: "revoked"}` and close with 1008; a revoked subject loses all its
 * sockets and nobody else's; when the revocation ends, the token is let in again.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { decodeJwt } from "jose"
import { startKhala, token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli } from "../support/Processes.js"
import type { RawSocket } from "../support/RawSocket.js"
import { openRaw, upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"

const joined = (port: number, jwt: string) =>
  Effect.gen(function*() {
    const raw = yield* openRaw({ port, token: jwt })
    expect((yield* raw.request("j", "j", "sync:v1", "phx_join", {}))[4].status).toBe("ok")
    return raw
  })

const revokedClose = (raw: RawSocket, label: string) =>
  Effect.gen(function*() {
    yield* waitUntil(`${label} closed`, () => raw.closed() !== undefined, { timeoutMs: 10_000 })
    expect(raw.closed()?.code).toBe(1008)
    expect(raw.pushes("sync:error")).toEqual([
      { code: "unauthorized", reason: "revoked", message: "token has been revoked" }
    ])
  })

const hydrate = (url: string, jwt: string) =>
  Effect.promise(async () => {
    const response = await fetch(url, { headers: { authorization: `Bearer ${jwt}` } })
    return { status: response.status, body: await response.json() as Record<string, unknown> }
  })

describe.skipIf(!postgresAvailable)("revocation across two nodes", () => {
  it.live(
    "khala revoke closes the token's sockets on the other node, refuses it everywhere, by jti or sub, until it ends",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const [nodeA, nodeB] = yield* Effect.all([startKhala(db.url), startKhala(db.url)], { concurrency: 2 })
        const [alice, bob, bobElsewhere, carol] = yield* Effect.all([
          token({ org: "org_a", scopes: [runs], sub: "alice" }),
          token({ org: "org_a", scopes: [runs], sub: "bob" }),
          token({ org: "org_a", scopes: [runs], sub: "bob" }),
          token({ org: "org_a", scopes: [runs], sub: "carol" })
        ])
        const documents = (node: typeof nodeA) => node.server.url(`/sync/v1/topics/${runs}/documents`)
        const aliceOnB = yield* joined(nodeB.server.port, alice)
        const bobOnB = yield* joined(nodeB.server.port, bob)
        const bobOnA = yield* joined(nodeA.server.port, bobElsewhere)
        const carolOnB = yield* joined(nodeB.server.port, carol)
        expect((yield* hydrate(documents(nodeB), alice)).status).toBe(200)

        // by jti, on node A's configuration: node B closes the socket
        const jti = String(decodeJwt(alice).jti)
        const byJti = yield* runCli(["revoke", "--jti", jti, "--until", "1h"], nodeA.env)
        expect(byJti.code).toBe(0)
        expect(byJti.stdout).toMatch(new RegExp(`^revoked jti ${jti} until \\d{4}-`))
        yield* revokedClose(aliceOnB, "alice's socket on node B")
        for (const node of [nodeA, nodeB]) {
          const refused = yield* upgradeOutcome({ port: node.server.port, token: alice })
          expect(refused.status).toBe(401)
          expect(refused.body).toContain("revoked")
          expect(yield* hydrate(documents(node), alice)).toEqual({
            status: 401,
            body: { code: "unauthorized", message: "token has been revoked", reason: "revoked" }
          })
        }
        // another token of alice's is not revoked by that jti
        const aliceAgain = yield* token({ org: "org_a", scopes: [runs], sub: "alice" })
        expect((yield* upgradeOutcome({ port: nodeB.server.port, token: aliceAgain })).status).toBe("open")

        // by sub, for a few seconds: every socket of bob's closes on both nodes, carol's stays
        const bySub = yield* runCli(["revoke", "--sub", "bob", "--until", "3s"], nodeB.env)
        expect(bySub.code).toBe(0)
        const revokedAt = Date.now()
        yield* revokedClose(bobOnB, "bob's socket on node B")
        yield* revokedClose(bobOnA, "bob's socket on node A")
        const fresh = yield* token({ org: "org_a", scopes: [runs], sub: "bob" })
        expect((yield* upgradeOutcome({ port: nodeA.server.port, token: fresh })).status).toBe(401)
        expect((yield* hydrate(documents(nodeB), bobElsewhere)).status).toBe(401)
        expect((yield* carolOnB.barrier("still-here"))[4].status).toBe("ok")
        expect(carolOnB.closed()).toBe(undefined)
        expect(carolOnB.pushes("sync:error")).toEqual([])

        // once the revocation ends, bob's tokens are let in again, on both nodes
        yield* Effect.sleep(Math.max(0, revokedAt + 3000 - Date.now()))
        const again = yield* Effect.all([
          upgradeOutcome({ port: nodeA.server.port, token: bob }),
          upgradeOutcome({ port: nodeB.server.port, token: fresh }),
          hydrate(documents(nodeA), bobElsewhere)
        ])
        expect(again.map((outcome) => outcome.status)).toEqual(["open", "open", 200])
        expect([nodeA.server.process.exitCode, nodeB.server.process.exitCode]).toEqual([null, null])
      })),
    60_000
  )
})
