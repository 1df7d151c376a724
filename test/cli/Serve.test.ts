import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { join } from "node:path"
import pg from "pg"
import { hsKeys } from "../support/Khala.js"
import { adminUrl, postgresAvailable, testDatabase } from "../support/Postgres.js"
import { freePort, httpGet, runCli, startServer, stopServer, tempDir } from "../support/Processes.js"

const publish = (env: Record<string, string>, docKey: string) =>
  runCli([
    "publish",
    "--topic",
    "runtime.notifications",
    "--doc-key",
    docKey,
    "--doc-version",
    "1",
    "--org",
    "org_a",
    "--payload",
    JSON.stringify({ docKey })
  ], env)

const keyring = hsKeys.map((k) => `${k.kid}:${k.secret}`).join(",")

const tailKeys = (env: Record<string, string>) =>
  Effect.map(
    runCli(["tail", "--topic", "runtime.notifications"], env),
    (result) => result.stdout.trim().split("\n").filter(Boolean).map((line) => JSON.parse(line).doc_key)
  )

describe("khala serve", () => {
  it.live(
    "on the embedded database: ready, one owner at a time, and durable across restarts and kills",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const env = { KHALA_DATA_DIR: yield* tempDir }
        const first = yield* startServer(env)
        expect(yield* httpGet(first.url("/healthz"))).toEqual({ status: 200, body: "ok" })
        expect(yield* httpGet(first.url("/readyz"))).toEqual({ status: 200, body: "ready" })
        // PGlite has no locking of its own: a second process on the same files is refused, not let in to corrupt them
        const refused = yield* publish(env, "n0")
        expect(refused.code).toBe(1)
        expect(refused.stderr).toContain(`in use by process ${first.process.pid}`)
        expect(yield* stopServer(first, "SIGTERM")).toBe(0)

        expect((yield* publish(env, "n1")).stdout).toBe("1\n")
        const second = yield* startServer(env)
        expect(yield* httpGet(second.url("/readyz"))).toEqual({ status: 200, body: "ready" })
        // a killed server leaves its lock behind; the next process takes it over and finds every committed row
        yield* stopServer(second, "SIGKILL")
        expect((yield* publish(env, "n2")).stdout).toBe("2\n")
        expect(yield* tailKeys(env)).toEqual(["n1", "n2"])
      })),
    { timeout: 360_000 }
  )

  it.live("npm start serves on the embedded database", () =>
    Effect.scoped(Effect.gen(function*() {
      const dataDir = yield* tempDir
      const port = yield* freePort
      yield* Effect.acquireRelease(
        Effect.sync(() =>
          spawn("npm", ["start"], {
            cwd: new URL("../..", import.meta.url).pathname,
            env: { ...process.env, KHALA_DATA_DIR: dataDir, KHALA_PORT: String(port), DATABASE_URL: "" },
            stdio: "ignore",
            // npm runs the server as its child: signal the whole group
            detached: true
          })
        ),
        (child) => Effect.sync(() => process.kill(-child.pid!, "SIGTERM"))
      )
      const ready = yield* httpGet(`http://127.0.0.1:${port}/readyz`).pipe(
        Effect.retry(Schedule.intersect(Schedule.spaced("200 millis"), Schedule.recurs(150)))
      )
      expect(ready).toEqual({ status: 200, body: "ready" })
    })), { timeout: 180_000 })

  describe.skipIf(!postgresAvailable)("on DATABASE_URL", () => {
    it.live(
      "without auth keys, serve refuses to start with one line naming the settings",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const { url } = yield* testDatabase
          const dataDir = yield* tempDir
          const result = yield* runCli(["serve"], {
            DATABASE_URL: url,
            KHALA_DATA_DIR: dataDir,
            KHALA_AUTH_HS256_KEYS: "",
            KHALA_PORT: String(yield* freePort)
          })
          expect(result.code).toBe(1)
          const lines = result.stderr.trim().split("\n")
          expect(lines).toHaveLength(1)
          expect(lines[0]).toContain("KHALA_AUTH_HS256_KEYS")
          expect(lines[0]).toContain("KHALA_AUTH_DEV_KEY")
          expect(existsSync(join(dataDir, "dev-auth-key"))).toBe(false)
        })),
      { timeout: 180_000 }
    )

    it.live(
      "/readyz turns 503 when the database stops answering, while /healthz stays up",
      () =>
        Effect.scoped(Effect.gen(function*() {
          const { name, url } = yield* testDatabase
          const server = yield* startServer({ DATABASE_URL: url, KHALA_AUTH_HS256_KEYS: keyring })
          expect((yield* httpGet(server.url("/readyz"))).status).toBe(200)
          yield* Effect.promise(async () => {
            const admin = new pg.Client({ connectionString: adminUrl })
            await admin.connect()
            await admin.query(`drop database ${name} with (force)`)
            await admin.end()
          })
          yield* httpGet(server.url("/readyz")).pipe(
            Effect.repeat({ until: (r) => r.status === 503, schedule: Schedule.spaced("100 millis") }),
            Effect.timeout("10 seconds")
          )
          expect(yield* httpGet(server.url("/healthz"))).toEqual({ status: 200, body: "ok" })
          expect(yield* stopServer(server)).toBe(0)
        })),
      { timeout: 180_000 }
    )
  })
})
