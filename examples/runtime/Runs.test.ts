import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { Journal, KhalaMemory } from "khala"
import { runtimeToken, startRuntime } from "../../test/support/ExampleRuntime.js"
import { connectJoined, subscribeOk, waitUntil } from "../../test/support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../../test/support/Postgres.js"
import * as Runs from "./Runs.js"
import * as Server from "./Server.js"

const run = (status: Runs.Run["status"], version: number) =>
  new Runs.Run({ id: "run_1", orgId: "org_a", name: "build", status, version })

const clientToken = (org: string) => runtimeToken(org, [Runs.topic])

describe("example runtime", () => {
  // The runtime's own unit test: its projection on Khala's memory layers, no database needed.
  it.effect("projects a run's summary, newest version wins", () =>
    Effect.gen(function*() {
      expect(yield* Runs.projectRun(run("running", 2))).toMatchObject({ _tag: "Appended", watermark: 1 })
      expect(yield* Runs.projectRun(run("queued", 1))).toMatchObject({ _tag: "NotNewer" })
      const page = yield* (yield* Journal).read(Runs.topic, 0, 10)
      expect(page.rows.map((r) => r.payload)).toEqual([{ run_id: "run_1", name: "build", status: "running" }])
    }).pipe(Effect.provide(KhalaMemory.layer(Server.catalog))))

  describe.skipIf(!postgresAvailable)("in its own process, with its API and Khala's socket on one port", () => {
    it.live(
      "an update made through the API reaches a subscribed client; a rolled-back one delivers nothing; clients " +
        "resume after the runtime restarts",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const db = yield* testDatabase
          const first = yield* Effect.scoped(Effect.gen(function*() {
            const runtime = yield* startRuntime(db.url)
            const { client } = yield* connectJoined({ port: runtime.port, token: yield* clientToken("org_a") })
            yield* subscribeOk(client, { topics: [Runs.topic] })
            yield* client.waitForReplayComplete(Runs.topic)

            const created = yield* runtime.call("POST", "/runs", { org_id: "org_a", name: "build" })
            expect(created, runtime.output()).toMatchObject({ status: 201, body: { version: 1 } })
            const id: string = created.body.id
            yield* client.waitForWatermark(Runs.topic, 1)
            expect(yield* runtime.call("PUT", `/runs/${id}`, { status: "running" })).toMatchObject({
              status: 200,
              body: { version: 2 }
            })
            yield* client.waitForWatermark(Runs.topic, 2)

            // a run whose name the org already has: its row and summary were written, and the commit refused them
            const duplicate = yield* runtime.call("POST", "/runs", { org_id: "org_a", name: "build" })
            expect(duplicate.status, runtime.output()).toBe(409)
            // the rolled-back summary took no watermark: the next change is 3, and nothing came in between
            expect((yield* runtime.call("PUT", `/runs/${id}`, { status: "failed" })).status).toBe(200)
            yield* client.waitForWatermark(Runs.topic, 3)
            expect(client.updates(Runs.topic).map((u) => [u.watermark, u.doc_key, u.doc_version, u.payload])).toEqual([
              [1, `org_a:${id}`, 1, { run_id: id, name: "build", status: "queued" }],
              [2, `org_a:${id}`, 2, { run_id: id, name: "build", status: "running" }],
              [3, `org_a:${id}`, 3, { run_id: id, name: "build", status: "failed" }]
            ])
            expect((yield* runtime.call("PUT", "/runs/nope", { status: "failed" })).status).toBe(404)
            expect((yield* runtime.call("PUT", `/runs/${id}`, { status: "exploded" })).status).toBe(400)
            return { id, persisted: client.persisted(Runs.topic)! }
          }))
          expect(first.persisted).toBe(3)

          // a new process on the same database: a client resumes from the watermark it persisted
          const runtime = yield* startRuntime(db.url)
          const { client } = yield* connectJoined({ port: runtime.port, token: yield* clientToken("org_a") })
          yield* subscribeOk(client, { topics: [Runs.topic], resume_after: { [Runs.topic]: first.persisted } })
          yield* client.waitForReplayComplete(Runs.topic)
          expect((yield* runtime.call("PUT", `/runs/${first.id}`, { status: "succeeded" })).status).toBe(200)
          yield* client.waitForWatermark(Runs.topic, 4)
          expect(client.updates(Runs.topic).map((u) => [u.watermark, u.payload])).toEqual([
            [4, { run_id: first.id, name: "build", status: "succeeded" }]
          ])
          // another org's client sees none of it
          const other = (yield* connectJoined({ port: runtime.port, token: yield* clientToken("org_b") })).client
          yield* subscribeOk(other, { topics: [Runs.topic] })
          yield* other.waitForReplayComplete(Runs.topic)
          yield* waitUntil("org b caught up", () => other.persisted(Runs.topic) === 4)
          expect(other.updates(Runs.topic)).toEqual([])
        })),
      { timeout: 360_000 }
    )
  })
})
