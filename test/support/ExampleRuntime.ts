/**
 * The example runtime (examples/runtime/main.ts) as its own process on a test database, for the tests of the
 * runtime and of the browser example that talks to it: its API, Khala's socket and hydration on one port.
 */
import { Effect, Schedule } from "effect"
import { spawn } from "node:child_process"
import { token } from "./Khala.js"
import { freePort, httpGet } from "./Processes.js"

/** The HS256 secret the runtime is started with (kid `example`). */
export const authSecret = "example-runtime-secret-0123456789abcdef"

/** A token the runtime accepts, for `org`, scoped to `scopes`. */
export const runtimeToken = (org: string, scopes: ReadonlyArray<string>) =>
  token({ org, scopes, kid: "example", secret: authSecret })

/** Starts the runtime on the database (the scope stops it with SIGTERM); `env` adds settings. */
export const startRuntime = (databaseUrl: string, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    const port = yield* freePort
    let output = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const main = new URL("../../examples/runtime/main.ts", import.meta.url).pathname
        const child = spawn(process.execPath, ["--import", "tsx", main], {
          env: {
            ...process.env,
            DATABASE_URL: databaseUrl,
            EXAMPLE_PORT: String(port),
            EXAMPLE_AUTH_SECRET: authSecret,
            ...env
          },
          stdio: ["ignore", "pipe", "pipe"]
        })
        child.stdout.on("data", (chunk) => (output += chunk))
        child.stderr.on("data", (chunk) => (output += chunk))
        return child
      }),
      // SIGTERM, as a deployment stops it; cut off if it has not exited after a few seconds
      (child) =>
        child.exitCode === null
          ? Effect.async<void>((resume) => {
            const kill = setTimeout(() => child.kill("SIGKILL"), 5_000)
            child.once("exit", () => {
              clearTimeout(kill)
              resume(Effect.void)
            })
            child.kill("SIGTERM")
          })
          : Effect.void
    )
    yield* httpGet(`http://127.0.0.1:${port}/readyz`).pipe(
      // a probe that hangs is given up and tried again
      Effect.timeout("3 seconds"),
      Effect.filterOrFail((r) => r.status === 200),
      Effect.retry(Schedule.intersect(Schedule.spaced("100 millis"), Schedule.recurs(300))),
      Effect.catchAll(() => Effect.dieMessage(`the example runtime did not start:\n${output}`))
    )
    const call = (method: string, path: string, body: unknown) =>
      Effect.promise(() =>
        fetch(`http://127.0.0.1:${port}${path}`, {
          method,
          headers: { "content-type": "application/json" },
          body: JSON.stringify(body)
        }).then(async (response) => {
          const text = await response.text()
          return { status: response.status, body: (text === "" ? undefined : JSON.parse(text)) as any }
        })
      ).pipe(
        Effect.timeoutFail({
          duration: "15 seconds",
          onTimeout: () => new Error(`${method} ${path} got no answer:\n${output}`)
        }),
        Effect.orDie
      )
    return { port, child, call, output: () => output, url: `http://127.0.0.1:${port}` }
  })
