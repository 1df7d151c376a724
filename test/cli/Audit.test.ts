import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { writeFileSync } from "node:fs"
import { join } from "node:path"
import { sqlPublisher } from "../support/Khala.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli, tempDir } from "../support/Processes.js"

describe.skipIf(!postgresAvailable)("khala audit", () => {
  it.live(
    "compares the read model with a legacy JSON-lines export, and exits 1 on mismatches",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const env = { DATABASE_URL: url }
        expect((yield* runCli(["migrate"], env)).code).toBe(0)
        const publisher = yield* sqlPublisher(url)
        yield* publisher.publish({ docKey: "same", payload: { n: 1 } })
        yield* publisher.publish({ docKey: "differs", payload: { n: 2 } })
        const dir = yield* tempDir
        const agreeing = join(dir, "agreeing.jsonl")
        writeFileSync(
          agreeing,
          [
            { org_id: "org_a", doc_key: "same", payload: { n: 1 } },
            { org_id: "org_a", doc_key: "differs", payload: { n: 2 } },
            { topic: "runtime.notifications", org_id: "org_a", doc_key: "elsewhere", payload: {} }
          ].map((line) => JSON.stringify(line)).join("\n") + "\n"
        )
        const ok = yield* runCli(["audit", "--topic", "runtime.run_summaries", "--legacy", agreeing], env)
        expect(ok).toMatchObject({ code: 0, stderr: "" })
        expect(ok.stdout).toContain("2 documents in khala, 2 in the legacy projection; 0 missing in khala")

        const differing = join(dir, "differing.jsonl")
        writeFileSync(
          differing,
          [
            { org_id: "org_a", doc_key: "differs", payload: { n: 3 } },
            { org_id: "org_a", doc_key: "ghost", payload_hash: "sha256:" + "0".repeat(64) }
          ].map((line) => JSON.stringify(line)).join("\n")
        )
        const bad = yield* runCli(["audit", "--topic", "runtime.run_summaries", "--legacy", differing], env)
        expect(bad.code).toBe(1)
        expect(bad.stdout.split("\n").filter((line) => line !== "").map((line) => line.split(" ").slice(0, 3))).toEqual(
          [
            ["hash_differs", "org_a", "differs"],
            ["missing_in_legacy", "org_a", "same"],
            ["missing_in_khala", "org_a", "ghost"],
            ["audit", "of", "runtime.run_summaries:"]
          ]
        )
        expect(bad.stderr).toBe("khala: audit of runtime.run_summaries: 3 mismatches\n")

        const malformed = join(dir, "malformed.jsonl")
        writeFileSync(malformed, `{"org_id":"a","doc_key":"k"}\nnot json\n`)
        const refused = yield* runCli(["audit", "--topic", "runtime.run_summaries", "--legacy", malformed], env)
        expect(refused).toMatchObject({ code: 1, stderr: expect.stringMatching(/^khala: .*malformed\.jsonl:2: not a/) })
      })),
    { timeout: 180_000 }
  )
})
