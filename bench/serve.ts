import { Effect } from "effect"
import { spawn } from "node:child_process"
import { existsSync } from "node:fs"
import { createServer } from "node:net"
import { ownedProcess } from "./processes.js"
import { authKeys } from "./token.js"

/** A TCP port nothing listens on right now. */
export const freePort = Effect.promise(() =>
  new Promise<number>((resolve, reject) => {
    const server = createServer()
    server.once("error", reject)
    server.listen(0, "127.0.0.1", () => {
      const address = server.address()
      server.close(() =>
        typeof address === "object" && address !== null ? resolve(address.port) : reject(new Error("no port"))
      )
    })
  })
)

/** The Phoenix socket URL of a sync server on `port` (the raw baseline server ignores the token). */
export const socketUrl = (port: number, token: string) =>
  `ws://127.0.0.1:${port}/socket/websocket?vsn=2.0.0&token=${encodeURIComponent(token)}`

const mainJs = new URL("../dist/main.js", import.meta.url).pathname
const serveNodeOptions = (process.env["KHALA_BENCH_SERVE_NODE_OPTIONS"] ?? "").split(" ").filter((o) => o !== "")

/**
 * A real `khala serve` (the built `dist/`, as deployed) on `databaseUrl`, accepting `benchToken`, for as long as the
 * current scope; ready once GET /readyz answers. `env` adds or overrides settings.
 */
export const khalaServe = (databaseUrl: string, env: Record<string, string> = {}) =>
  Effect.gen(function*() {
    if (!existsSync(mainJs)) return yield* Effect.dieMessage(`${mainJs} is missing: run npm run build first`)
    const port = yield* freePort
    const child = yield* ownedProcess(() =>
      // KHALA_BENCH_SERVE_NODE_OPTIONS, e.g. "--cpu-prof --cpu-prof-dir=prof", profiles the server under load
      spawn(process.execPath, [...serveNodeOptions, mainJs, "serve"], {
        env: {
          ...process.env,
          DATABASE_URL: databaseUrl,
          KHALA_PORT: String(port),
          KHALA_AUTH_HS256_KEYS: authKeys,
          // every bench client is one principal (`benchToken`): its share is the whole server
          KHALA_MAX_SOCKETS_PER_PRINCIPAL: "10000000",
          KHALA_PRINCIPAL_SUBSCRIBES_PER_SECOND: "1000000",
          ...env
        },
        stdio: ["ignore", "ignore", "pipe"]
      })
    )
    // kept to explain a server that dies or never gets ready; reading it also keeps the pipe from filling up
    let stderr = ""
    child.stderr?.on("data", (chunk: Buffer) => {
      stderr = (stderr + chunk.toString()).slice(-4000)
    })
    yield* Effect.promise(async () => {
      const deadline = Date.now() + 30_000
      while (Date.now() < deadline) {
        if (child.exitCode !== null || child.signalCode !== null) break
        const ready = await fetch(`http://127.0.0.1:${port}/readyz`).then((r) => r.ok, () => false)
        if (ready) return
        await new Promise((r) => setTimeout(r, 100))
      }
      throw new Error(`khala serve did not become ready (exit ${child.exitCode ?? child.signalCode}):\n${stderr}`)
    })
    const pid = child.pid
    if (pid === undefined) return yield* Effect.dieMessage("khala serve has no pid")
    return { port, pid }
  })
