/**
 * `khala serve` serves the runtime's topics from its configuration (protocol.md §4): `KHALA_TOPICS` / `KHALA_TOPICS_FILE`
 * name them with their retention and pointer mode; they are checked at start, and a bad one is one line and a failing
 * exit, never a half-configured server.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { parseTopics } from "../../src/cli/Topics.js"
import { RetentionClass } from "../../src/protocol/gen/openagents/sync/v1/topics_pb.js"
import { khalaEnv, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli, tempDir } from "../support/Processes.js"

const things = "myapp.things"

describe("extra topics from the configuration", () => {
  it("parses entries and names the first fault", () => {
    expect(parseTopics(JSON.stringify([
      { wire_name: things, retention_class: "high_churn_events", pointer_mode: true },
      { wire_name: "myapp.notes", retention_ms: 3_600_000 }
    ]))).toEqual(Either.right([
      {
        wireName: things,
        enumName: undefined,
        retentionClass: RetentionClass.HIGH_CHURN_EVENTS,
        retentionMs: undefined,
        pointerMode: true
      },
      {
        wireName: "myapp.notes",
        enumName: undefined,
        retentionClass: undefined,
        retentionMs: 3_600_000,
        pointerMode: undefined
      }
    ]))
    const fault = (text: string) => Either.match(parseTopics(text), { onLeft: (m) => m, onRight: () => "parsed" })
    expect(fault("[{\"wire_name\": \"a.b\", \"retention_class\": \"forever\"}]")).toContain("[0].retention_class")
    expect(fault("[{\"wire_name\": \"a.b\", \"pointer\": true}]")).toContain("pointer")
    expect(fault("{\"wire_name\": \"a.b\"}")).not.toBe("parsed")
    expect(fault("not json")).not.toBe("parsed")
  })

  describe.skipIf(!postgresAvailable)("khala serve", () => {
    it.live("serves a topic of KHALA_TOPICS_FILE, in its pointer mode", () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const file = join(yield* tempDir, "topics.json")
        writeFileSync(
          file,
          JSON.stringify([{ wire_name: things, retention_class: "notifications", pointer_mode: true }])
        )
        const { server } = yield* startKhala(db.url, { KHALA_TOPICS_FILE: file })
        const { client } = yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", scopes: [things] })
        })
        yield* subscribeOk(client, { topics: [things] })
        const sql = yield* sqlPublisher(db.url)
        expect(yield* sql.publish({ topic: things, docKey: "org_a:t1", payload: { secret: 1 } })).toBe(1)
        yield* client.waitForWatermark(things, 1)
        expect(client.updates(things)).toEqual([
          expect.objectContaining({ doc_key: "org_a:t1", payload: null, hydration_required: true })
        ])
      })), { timeout: 180_000 })

    it.live("a bad topic setting stops the start with one line naming it", () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const dir = yield* tempDir
        const file = join(dir, "topics.json")
        writeFileSync(file, JSON.stringify([{ wire_name: "Not A Topic" }]))
        const cases = [
          { KHALA_TOPICS_FILE: file },
          { KHALA_TOPICS_FILE: join(dir, "missing.json") },
          { KHALA_TOPICS: "[{\"wire_name\": \"a.b\", \"retention_ms\": -1}]" }
        ]
        for (const extra of cases) {
          const result = yield* runCli(["serve"], khalaEnv(db.url, dir, extra))
          const setting = Object.keys(extra)[0]!
          expect({ setting, code: result.code }).toEqual({ setting, code: 1 })
          const lines = result.stderr.trim().split("\n")
          expect({ setting, lines: lines.length }).toEqual({ setting, lines: 1 })
          expect(lines[0]).toContain(setting)
        }
      })), { timeout: 180_000 })
  })
})
