/**
 * `npm start` under a supervisor: the signal goes to npm, which forwards it to its child. The start script execs the
 * server, so that child is the server itself and stops (a shell in between would be signalled and leave the server
 * running, orphaned, on its port).
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { spawn } from "node:child_process"
import { khalaEnv } from "../support/Khala.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { freePort, httpGet, tempDir } from "../support/Processes.js"

describe.skipIf(!postgresAvailable)("npm start", () => {
  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    it.live(`${signal} to npm stops the server`, () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const dataDir = yield* tempDir
        const port = yield* freePort
        const npm = yield* Effect.acquireRelease(
          Effect.sync(() =>
            spawn("npm", ["start"], {
              cwd: new URL("../..", import.meta.url).pathname,
              env: { ...process.env, ...khalaEnv(db.url, dataDir), KHALA_HOST: "127.0.0.1", KHALA_PORT: String(port) },
              stdio: "ignore",
              // its own process group, so that the scope can end whatever is left of it
              detached: true
            })
          ),
          // the group may be gone already: that is what the test hopes for
          (child) => Effect.try(() => process.kill(-child.pid!, "SIGKILL")).pipe(Effect.ignore)
        )
        // an answer, or the failure to connect; one that hangs is tried again
        const healthz = httpGet(`http://127.0.0.1:${port}/healthz`).pipe(Effect.timeout("2 seconds"))
        yield* healthz.pipe(
          Effect.filterOrFail((r) => r.status === 200),
          Effect.retry(Schedule.intersect(Schedule.spaced("100 millis"), Schedule.recurs(300))),
          Effect.orDie
        )
        // to npm alone, as a supervisor signals the process it started
        const signalledAt = Date.now()
        npm.kill(signal)
        const stopped = yield* healthz.pipe(
          Effect.flip,
          Effect.filterOrFail((error) => error._tag !== "TimeoutException"),
          Effect.retry(Schedule.intersect(Schedule.spaced("100 millis"), Schedule.recurs(150))),
          Effect.as(true),
          Effect.orElseSucceed(() => false)
        )
        yield* Effect.logInfo(
          `npm start: ${signal} stopped the server: ${stopped}, after ${Date.now() - signalledAt} ms`
        )
        expect(stopped).toBe(true)
      })), { timeout: 270_000 })
  }
})
