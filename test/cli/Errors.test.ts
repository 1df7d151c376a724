import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawn } from "node:child_process"
import { writeFileSync } from "node:fs"
import { createServer } from "node:net"
import type { AddressInfo } from "node:net"
import { join } from "node:path"
import { khalaEnv } from "../support/Khala.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import type { CliResult } from "../support/Processes.js"
import { runCli, tempDir } from "../support/Processes.js"

const main = new URL("../../dist/main.js", import.meta.url).pathname

/** `khala <args>` with `input` on its stdin. */
const runWithInput = (args: ReadonlyArray<string>, env: Record<string, string>, input: string) =>
  Effect.async<CliResult>((resume) => {
    const child = spawn(process.execPath, [main, ...args], { env: { ...process.env, ...env } })
    let stdout = ""
    let stderr = ""
    child.stdout.on("data", (chunk) => (stdout += chunk))
    child.stderr.on("data", (chunk) => (stderr += chunk))
    child.on("close", (code) => resume(Effect.succeed({ code: code ?? 1, stdout, stderr })))
    child.stdin.end(input)
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** A failure an operator can act on: a failing exit and exactly one line on stderr, no stack trace. */
const expectOneLine = (result: CliResult, pattern: RegExp) => {
  expect(result.code).toBe(1)
  const lines = result.stderr.split("\n").filter((line) => line.trim() !== "")
  expect(lines).toHaveLength(1)
  expect(lines[0]).toMatch(pattern)
}

const tail = ["tail", "--topic", "runtime.run_summaries"]
const publish = (docKey: string, docVersion: string, org = "org_a") => [
  "publish",
  "--topic",
  "runtime.run_summaries",
  "--doc-key",
  docKey,
  "--doc-version",
  docVersion,
  "--org",
  org
]

describe("command-line errors are one line and a failing exit", () => {
  // refused while the options are parsed, before any database is opened: separate processes, run side by side
  describe.concurrent("usage", () => {
    it.live("negative --after", () =>
      Effect.map(runCli([...tail, "--after", "-1"]), (r) => expectOneLine(r, /^--after must not be negative, got -1$/)))
    it.live("--limit below 1", () =>
      Effect.map(runCli([...tail, "--limit", "0"]), (r) => expectOneLine(r, /^--limit must be at least 1, got 0$/)))
    it.live("negative --limit", () =>
      Effect.map(runCli([...tail, "--limit", "-5"]), (r) => expectOneLine(r, /^--limit must not be negative/)))
    it.live("not a number", () =>
      Effect.map(
        runCli([...tail, "--after", "ten"]),
        (r) => expectOneLine(r, /^--after must be a whole number, got "ten"$/)
      ))
    it.live("negative --before-watermark", () =>
      Effect.map(
        runCli(["retention", "prune", "--topic", "runtime.run_summaries", "--before-watermark", "-3"]),
        (r) => expectOneLine(r, /^--before-watermark must not be negative, got -3$/)
      ))
    it.live("oversized number", () =>
      Effect.map(
        runCli([...publish("k", "99999999999999999999"), "--payload", "{}"]),
        (r) => expectOneLine(r, /^--doc-version 99999999999999999999 is too large: at most 9007199254740991$/)
      ))
    it.live("fractional number", () =>
      Effect.map(
        runCli([...publish("k", "1.5"), "--payload", "{}"]),
        (r) => expectOneLine(r, /^--doc-version must be a whole number/)
      ))
  })

  describe.skipIf(!postgresAvailable)("against a database", () => {
    it.live(
      "bad doc key, bad org, a missing payload file; --payload @file and --payload - publish",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const { url } = yield* testDatabase
          const dir = yield* tempDir
          const env = khalaEnv(url, dir)
          expectOneLine(
            yield* runCli([...publish("", "1"), "--payload", "{}"], env),
            /^khala: docKey must be a non-empty string$/
          )
          expectOneLine(
            yield* runCli([...publish("k", "1", ""), "--payload", "{}"], env),
            /^khala: orgId must be a non-empty string$/
          )
          expectOneLine(
            yield* runCli([...publish("k", "1"), "--payload", `@${join(dir, "missing.json")}`], env),
            /^khala: --payload @.*missing\.json: .*no such file/
          )
          const file = join(dir, "doc.json")
          writeFileSync(file, `{"from": "file"}\n`)
          expect(yield* runCli([...publish("from_file", "1"), "--payload", `@${file}`], env)).toMatchObject({
            code: 0,
            stdout: "1\n"
          })
          expect(yield* runWithInput([...publish("from_stdin", "1"), "--payload", "-"], env, `{"from":"stdin"}`))
            .toMatchObject({
              code: 0,
              stdout: "2\n"
            })
          expectOneLine(
            yield* runWithInput([...publish("bad", "1"), "--payload", "-"], env, "{nope"),
            /^khala: --payload is not valid JSON$/
          )
          const rows = (yield* runCli(tail, env)).stdout.trim().split("\n").map((line) => JSON.parse(line).payload)
          expect(rows).toEqual([{ from: "file" }, { from: "stdin" }])

          // status: the database's view of each topic
          const status = yield* runCli(["status", "--url", "http://127.0.0.1:9"], env)
          expect(status.code).toBe(0)
          expect(status.stdout).toMatch(
            /^runtime\.run_summaries head=2 retention_floor=0 oldest_retained=1@\S+ epoch=[0-9a-f-]{36}$/m
          )
          expect(status.stdout).toMatch(/^runtime\.notifications head=0 retention_floor=0 oldest_retained=none /m)
          expect(status.stdout).toContain("node http://127.0.0.1:9: unreachable")
        })),
      { timeout: 180_000 }
    )

    it.live("a port in use and a host that does not exist", () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const env = khalaEnv(url, yield* tempDir)
        const taken = yield* Effect.acquireRelease(
          Effect.async<ReturnType<typeof createServer>>((resume) => {
            const server = createServer()
            server.listen(0, "127.0.0.1", () => resume(Effect.succeed(server)))
          }),
          (server) => Effect.sync(() => server.close())
        )
        const port = String((taken.address() as AddressInfo).port)
        expectOneLine(
          yield* runCli(["serve"], { ...env, KHALA_HOST: "127.0.0.1", KHALA_PORT: port }),
          new RegExp(`^khala: cannot listen on 127\\.0\\.0\\.1:${port}: it is already in use`)
        )
        expectOneLine(
          yield* runCli(["serve"], { ...env, KHALA_HOST: "no-such-host.invalid", KHALA_PORT: port }),
          /^khala: cannot listen on KHALA_HOST "no-such-host\.invalid": no such host$/
        )
      })), { timeout: 180_000 })
  })

  it.live("token warns in one line about scopes outside the catalog, and still signs", () =>
    Effect.scoped(Effect.gen(function*() {
      const env = { KHALA_AUTH_HS256_KEYS: "k1:0123456789abcdef0123456789abcdef", KHALA_DATA_DIR: yield* tempDir }
      const result = yield* runCli([
        "token",
        "--sub",
        "u",
        "--org",
        "o",
        "--scopes",
        "runtime.run_summaries,runtime.typo"
      ], env)
      expect(result.code).toBe(0)
      expect(result.stdout.split(".")).toHaveLength(3)
      expect(result.stderr).toBe(
        "khala: warning: scope outside the topic catalog, granting nothing here: runtime.typo\n"
      )
      const clean = yield* runCli(
        ["token", "--sub", "u", "--org", "o", "--scopes", "SYNC_TOPIC_RUNTIME_NOTIFICATIONS"],
        env
      )
      expect(clean).toMatchObject({ code: 0, stderr: "" })
    })))
})
