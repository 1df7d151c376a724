/**
 * What `khala serve` logs, as a process (src/cli/Logging.ts): with KHALA_LOG_FORMAT=json every line is one JSON
 * object with a level and a message and no colour codes; the events of a socket's life are there at their levels,
 * an auth refusal names its reason and never the token, and `/readyz` logs a state once, not at every probe. On a
 * terminal the default is pretty, coloured unless NO_COLOR is set.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { spawn, spawnSync } from "node:child_process"
import { khalaEnv, startKhala, token } from "../support/Khala.js"
import { waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { freePort, httpGet, stopServer, tempDir } from "../support/Processes.js"
import { openRaw, upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const ansi = new RegExp(String.fromCharCode(27) + "\\[")
const main = new URL("../../dist/main.js", import.meta.url).pathname
const hasScript = spawnSync("script", ["--version"]).status === 0

interface Entry {
  readonly level: string
  readonly message: string
  readonly [field: string]: unknown
}

describe.skipIf(!postgresAvailable)("logs of khala serve", () => {
  it.live(
    "KHALA_LOG_FORMAT=json: one JSON object a line; socket, auth, readiness and drain events at their levels",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url, { KHALA_LOG_FORMAT: "json", KHALA_LOG_LEVEL: "debug" })
        const lines = () => server.output().split("\n").filter((line) => line.trim() !== "")
        const entries = () => lines().map((line) => JSON.parse(line) as Entry)

        // probed three times, ready once in the log
        for (let i = 0; i < 3; i++) {
          expect(yield* httpGet(server.url("/readyz"))).toEqual({ status: 200, body: "ready" })
        }

        const forged = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJtYXJrZXItOTkxNyJ9.c2lnbmF0dXJlLW1hcmtlcg"
        expect((yield* upgradeOutcome({ port: server.port, token: forged })).status).toBe(401)
        const expired = yield* token({ org: "org_a", scopes: [runs], ttlSeconds: -120 })
        expect((yield* upgradeOutcome({ port: server.port, token: expired })).status).toBe(401)

        const jwt = yield* token({ org: "org_a", scopes: [runs] })
        const raw = yield* openRaw({ port: server.port, token: jwt })
        yield* raw.request("j", "j", "sync:v1", "phx_join", {})
        yield* raw.request("j", "s", "sync:v1", "sync:subscribe", { topics: [runs] })
        yield* waitUntil("the subscribe to be logged", () => server.output().includes("\"subscribed\""))

        expect(yield* stopServer(server, "SIGTERM")).toBe(0)
        expect(raw.closed()?.code).toBe(1001)

        const output = server.output()
        expect(output).not.toMatch(ansi)
        for (const entry of entries()) {
          expect(typeof entry.level).toBe("string")
          expect(typeof entry.message).toBe("string")
        }
        const find = (message: string) => entries().filter((e) => e.message === message)

        expect(find("ready")).toHaveLength(1)
        expect(find("ready")[0]!.level).toBe("info")

        const refusals = find("upgrade refused")
        expect(refusals.map((e) => e.level)).toEqual(["info", "info"])
        expect(refusals.map((e) => e.reason)).toEqual(["bad_signature", "expired"])
        // never the token, nor a piece of it
        for (const secret of [forged, expired, jwt]) {
          for (const piece of secret.split(".")) expect(output).not.toContain(piece)
        }

        const [opened] = find("socket opened")
        expect(opened).toMatchObject({ level: "debug", org: "org_a" })
        expect(find("subscribed")[0]).toMatchObject({ level: "debug", socket: opened!.socket, topics: `${runs}@0` })
        expect(find("socket closed")[0]).toMatchObject({ level: "debug", socket: opened!.socket, code: 1001 })
        expect(entries().find((e) => e.message.startsWith("draining"))).toMatchObject({ level: "info", sockets: 1 })
        expect(find("drained")[0]).toMatchObject({ level: "info", remaining: 0 })
      })),
    { timeout: 180_000 }
  )

  /** `khala serve` on a terminal (`script` gives it one), until it listens; what it wrote there. */
  const onTerminal = (env: Record<string, string>) =>
    Effect.scoped(Effect.gen(function*() {
      const db = yield* testDatabase
      const dataDir = yield* tempDir
      const port = yield* freePort
      let output = ""
      yield* Effect.acquireRelease(
        Effect.sync(() => {
          const childEnv: Record<string, string | undefined> = {
            ...process.env,
            ...khalaEnv(db.url, dataDir),
            KHALA_PORT: String(port),
            KHALA_HOST: "127.0.0.1"
          }
          // the default format, and colours as `env` says
          delete childEnv["KHALA_LOG_FORMAT"]
          delete childEnv["NO_COLOR"]
          const child = spawn("script", ["-q", "-f", "-e", "-c", `${process.execPath} ${main} serve`, "/dev/null"], {
            env: { ...childEnv, ...env },
            stdio: ["pipe", "pipe", "pipe"],
            detached: true
          })
          child.stdout.on("data", (chunk) => (output += chunk))
          child.stderr.on("data", (chunk) => (output += chunk))
          return child
        }),
        (child) => Effect.sync(() => process.kill(-child.pid!, "SIGKILL"))
      )
      yield* httpGet(`http://127.0.0.1:${port}/readyz`).pipe(
        Effect.filterOrFail((r) => r.status === 200),
        Effect.retry(Schedule.intersect(Schedule.spaced("100 millis"), Schedule.recurs(300)))
      )
      yield* waitUntil("the ready line", () => output.includes("ready"))
      return output
    }))

  it.live.skipIf(!hasScript)(
    "on a terminal: pretty and coloured by default, without a colour code under NO_COLOR",
    () =>
      Effect.gen(function*() {
        const coloured = yield* onTerminal({})
        const plain = yield* onTerminal({ NO_COLOR: "1" })
        expect(coloured).toContain("Listening on")
        expect(coloured).toMatch(ansi)
        expect(plain).toContain("Listening on")
        expect(plain).not.toMatch(ansi)
        // pretty, not JSON
        expect(plain).not.toContain("{\"time\"")
      }),
    { timeout: 180_000 }
  )
})
