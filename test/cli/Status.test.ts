/**
 * `khala status --url` and the node's `GET /statusz`: a running node tells its sockets and its subscribers per topic,
 * from its own state, and the command prints them beside each topic's journal positions. A node that answers
 * something else, or a bad `--url`, is one clear line.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { httpGet, runCli } from "../support/Processes.js"

const runs = "runtime.run_summaries"
const notifications = "runtime.notifications"

/** An HTTP server on a free port that answers every path with `answer`; the scope stops it. */
const fakeNode = (answer: (path: string) => { readonly status: number; readonly body: string }) =>
  Effect.acquireRelease(
    Effect.async<ReturnType<typeof createServer>>((resume) => {
      const server = createServer((request, response) => {
        const { body, status } = answer(request.url ?? "/")
        response.writeHead(status, { "content-type": "application/json" }).end(body)
      })
      server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
    }),
    (server) => Effect.async<void>((resume) => void server.close(() => resume(Effect.void)))
  ).pipe(Effect.map((server) => `http://127.0.0.1:${(server.address() as AddressInfo).port}`))

describe.skipIf(!postgresAvailable)("khala status --url", () => {
  it.live(
    "two sockets on two topics: /statusz counts them, and the command prints them per topic",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { env, server } = yield* startKhala(db.url)
        const both = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [runs, notifications] })
        })
        yield* subscribeOk(both.client, { topics: [runs, notifications] })
        yield* both.client.waitForReplayComplete(runs)
        yield* both.client.waitForReplayComplete(notifications)
        const one = yield* connectJoined({ port: server.port, token: yield* token({ org: "org_b", scopes: [runs] }) })
        yield* subscribeOk(one.client, { topics: [runs] })
        yield* one.client.waitForReplayComplete(runs)

        const answer = yield* httpGet(server.url("/statusz"))
        expect(answer.status).toBe(200)
        const status = JSON.parse(answer.body)
        expect(status).toEqual({
          draining: false,
          sockets: 2,
          max_sockets: 10_000,
          subscriptions: 3,
          topics: [{ topic: notifications, subscribers: 1 }, { topic: runs, subscribers: 2 }],
          uptime_seconds: expect.any(Number)
        })
        // topic names and counts only: no org, user or document
        expect(answer.body).not.toMatch(/org_a|org_b|user-1/)

        const printed = yield* runCli(["status", "--url", server.url("/")], env)
        expect(printed.code, printed.stderr).toBe(0)
        expect(printed.stdout).toMatch(new RegExp(`^${runs} head=0 retention_floor=0 .* subscribers=2$`, "m"))
        expect(printed.stdout).toMatch(new RegExp(`^${notifications} head=0 .* subscribers=1$`, "m"))
        expect(printed.stdout).toMatch(/^runtime\.codex_worker_summaries .* subscribers=0$/m)
        expect(printed.stdout).toMatch(
          new RegExp(
            `^node http://127\\.0\\.0\\.1:${server.port}: ready draining=false sockets=2 max_sockets=10000 ` +
              `subscriptions=3 uptime_seconds=\\d+$`,
            "m"
          )
        )

        // a socket that leaves takes its subscriptions with it
        yield* both.client.disconnect
        yield* httpGet(server.url("/statusz")).pipe(
          Effect.map((r) => JSON.parse(r.body)),
          Effect.repeat({ until: (s) => s.sockets === 1 }),
          Effect.timeout("10 seconds")
        )
        expect(JSON.parse((yield* httpGet(server.url("/statusz"))).body)).toMatchObject({
          sockets: 1,
          subscriptions: 1,
          topics: [{ topic: runs, subscribers: 1 }]
        })
      })),
    { timeout: 180_000 }
  )

  it.live(
    "a node that answers something else than a status, or no status at all, and a --url that is not one",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { env } = yield* startKhala(db.url)
        const odd = yield* fakeNode((path) =>
          path === "/readyz"
            ? { status: 200, body: "ready" }
            : { status: 200, body: JSON.stringify({ draining: false, sockets: -1, topics: [] }) }
        )
        const oddOut = yield* runCli(["status", "--url", odd], env)
        expect(oddOut.code).toBe(0)
        const oddLine = oddOut.stdout.split("\n").filter((line) => line.startsWith("node "))
        expect(oddLine).toEqual([
          `node ${odd}: ready; no status: /statusz answered something that is not a node status at sockets: ` +
          "Expected a non-negative number, actual -1"
        ])
        // without a status, the topics' lines say nothing of subscribers
        expect(oddOut.stdout).not.toContain("subscribers=")

        const old = yield* fakeNode((path) =>
          path === "/readyz" ? { status: 503, body: "draining" } : { status: 404, body: "" }
        )
        const oldOut = yield* runCli(["status", "--url", old], env)
        expect(oldOut.stdout).toContain(
          `node ${old}: not ready (503 draining); no status: /statusz answered 404 (a node without it?)\n`
        )

        const bad = yield* runCli(["status", "--url", "localhost:4000"], env)
        expect(bad.code).toBe(1)
        expect(bad.stdout).toBe("")
        expect(bad.stderr.trim().split("\n")[0]).toMatch(/--url must be a node's http\(s\) base URL/)
        expect(bad.stderr).not.toMatch(/\bat .*\.js:\d+/)
      })),
    { timeout: 180_000 }
  )
})
