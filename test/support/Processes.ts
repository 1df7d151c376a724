import { Effect, Schedule } from "effect"
import { type ChildProcess, execFile, spawn } from "node:child_process"
import { mkdtempSync, rmSync } from "node:fs"
import { createServer } from "node:net"
import { tmpdir } from "node:os"
import { join } from "node:path"

const main = new URL("../../dist/main.js", import.meta.url).pathname

export interface CliResult {
  readonly code: number
  readonly stdout: string
  readonly stderr: string
}

/** Runs `khala <args>` as a separate process with the given environment on top of this one's. */
export const runCli = (args: ReadonlyArray<string>, env: Record<string, string> = {}) =>
  Effect.async<CliResult>((resume) => {
    const child = execFile(
      process.execPath,
      [main, ...args],
      { env: { ...process.env, ...env } },
      (error, stdout, stderr) =>
        resume(Effect.succeed({ code: error ? (typeof error.code === "number" ? error.code : 1) : 0, stdout, stderr }))
    )
    return Effect.sync(() => child.kill("SIGKILL"))
  })

/** A free TCP port on the loopback interface. */
export const freePort = Effect.async<number>((resume) => {
  const server = createServer()
  server.listen(0, "127.0.0.1", () => {
    const address = server.address()
    const port = typeof address === "object" && address !== null ? address.port : 0
    server.close(() => resume(Effect.succeed(port)))
  })
})

/** A temporary directory for the scope. */
export const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "khala-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

export interface Server {
  readonly port: number
  readonly process: ChildProcess
  readonly output: () => string
  readonly url: (path: string) => string
}

const get = (url: string) =>
  Effect.tryPromise(() =>
    fetch(url).then(async (response) => ({ status: response.status, body: await response.text() }))
  )

/** GET a URL: status and body, or a failure when nothing answers. */
export const httpGet = get

/** Another process took the port between `freePort` and the server's listen. */
class PortTaken {
  readonly _tag = "PortTaken"
}

const startOnce = (env: Record<string, string>) =>
  Effect.gen(function*() {
    const port = env["KHALA_PORT"] === undefined ? yield* freePort : Number(env["KHALA_PORT"])
    let output = ""
    const child = yield* Effect.acquireRelease(
      Effect.sync(() => {
        const child = spawn(process.execPath, [main, "serve"], {
          env: { ...process.env, KHALA_HOST: "127.0.0.1", KHALA_PORT: String(port), ...env },
          stdio: ["ignore", "pipe", "pipe"]
        })
        child.stdout.on("data", (chunk) => (output += chunk))
        child.stderr.on("data", (chunk) => (output += chunk))
        return child
      }),
      (child) => child.exitCode === null ? Effect.sync(() => child.kill("SIGKILL")) : Effect.void
    )
    const server: Server = {
      port,
      process: child,
      output: () => output,
      url: (path) => `http://127.0.0.1:${port}${path}`
    }
    // Ours is the server that answers once it says it listens on the port and still runs: tests start servers in
    // parallel, and a port taken by another between `freePort` and the listen is answered by that other server.
    const exited = Effect.suspend(() =>
      child.exitCode !== null || child.signalCode !== null
        ? output.includes("EADDRINUSE") || output.includes("in use") ? Effect.fail(new PortTaken()) : Effect.die(
          new Error(`khala serve exited at start:\n${output}`)
        )
        : Effect.void
    )
    yield* Effect.zipRight(exited, get(server.url("/healthz"))).pipe(
      // a probe that hangs is given up and tried again
      Effect.timeout("3 seconds"),
      Effect.filterOrFail((r) => r.status === 200 && output.includes(`:${port}`)),
      Effect.zipLeft(exited),
      Effect.retry({
        schedule: Schedule.intersect(Schedule.spaced("100 millis"), Schedule.recurs(300)),
        while: (error) => !(error instanceof PortTaken)
      }),
      Effect.catchAll((error) =>
        error instanceof PortTaken ? Effect.fail(error) : Effect.die(new Error(`khala serve did not start:\n${output}`))
      )
    )
    return server
  })

/**
 * Starts `khala serve` and waits until it answers `/healthz`, on a port of its own (started again on another when
 * the port it was given was taken meanwhile); the scope kills it if it still runs.
 */
export const startServer = (env: Record<string, string>) =>
  startOnce(env).pipe(
    Effect.retry({ times: env["KHALA_PORT"] === undefined ? 3 : 0 }),
    Effect.orDie
  )

/** Sends a signal and waits for the process to exit: its exit code, or the signal that ended it. */
export const stopServer = (server: Server, signal: NodeJS.Signals = "SIGTERM") =>
  Effect.async<number | string>((resume) => {
    if (server.process.exitCode !== null) return resume(Effect.succeed(server.process.exitCode))
    server.process.once("exit", (code, sig) => resume(Effect.succeed(code ?? sig ?? "unknown")))
    server.process.kill(signal)
  })
