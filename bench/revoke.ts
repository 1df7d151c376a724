import { Effect } from "effect"
import { spawn } from "node:child_process"
import { WebSocket } from "ws"
import * as AuthJose from "../src/auth/AuthJose.js"
import { benchDatabase } from "./publish.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"
import { khalaServe, socketUrl } from "./serve.js"
import { percentile } from "./stats.js"
import { authKeys } from "./token.js"
import { now, orgId, topic } from "./workload.js"

export interface RevokeOptions {
  readonly runs: number
}

const [kid = "", secret = ""] = authKeys.split(":")
const auth = AuthJose.make([{ kid, secret: new TextEncoder().encode(secret) }])
const mainJs = new URL("../dist/main.js", import.meta.url).pathname

/** The bound without LISTEN: each node re-reads the revocations once a second (its default). */
const pollIntervalMs = 1000

/** Opens a socket with the token on `port`; resolves with a promise of the instant it closes. */
const openSocket = (port: number, token: string) =>
  Effect.async<Promise<number>>((resume) => {
    const ws = new WebSocket(socketUrl(port, token))
    const closed = new Promise<number>((resolve) => ws.once("close", () => resolve(now())))
    ws.once("open", () => resume(Effect.succeed(closed)))
    ws.once("error", (error) => resume(Effect.die(error)))
  })

/**
 * Runs `khala revoke --jti` on the database: the instants it printed its confirmation (the revocation is committed by
 * then) and exited.
 */
const revoke = (databaseUrl: string, jti: string) =>
  Effect.async<{ readonly committedAt: number; readonly exitedAt: number }>((resume) => {
    let committedAt = Number.NaN
    const child = spawn(process.execPath, [mainJs, "revoke", "--jti", jti, "--until", "1h"], {
      env: { ...process.env, DATABASE_URL: databaseUrl, KHALA_AUTH_HS256_KEYS: authKeys },
      stdio: ["ignore", "pipe", "inherit"]
    })
    child.stdout.once("data", () => (committedAt = now()))
    child.once(
      "exit",
      (code) =>
        resume(
          code === 0 ? Effect.succeed({ committedAt, exitedAt: now() }) : Effect.dieMessage(`revoke exited ${code}`)
        )
    )
  })

const jtiOf = (token: string): string => JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString()).jti

/** Milliseconds from `khala revoke` to the close of a socket on another node, per run. */
const series = (url: string, port: number, runs: number, label: string) =>
  Effect.gen(function*() {
    const fromExit: Array<number> = []
    const fromCommit: Array<number> = []
    for (let run = 0; run < runs; run++) {
      const token = yield* auth.sign({ subject: `bench-${label}-${run}`, orgId, scopes: [topic], ttlSeconds: 600 })
      const closed = yield* openSocket(port, token)
      const { committedAt, exitedAt } = yield* revoke(url, jtiOf(token))
      const closedAt = yield* Effect.promise(() => closed)
      fromExit.push(closedAt - exitedAt)
      fromCommit.push(closedAt - committedAt)
    }
    const show = (samples: Array<number>) => [...samples].sort((a, b) => a - b).map((s) => s.toFixed(1)).join(", ")
    console.error(`bench: revoke ${label}: exit → close (ms): ${show(fromExit)}`)
    console.error(`bench: revoke ${label}: printed → close (ms): ${show(fromCommit)}`)
    return { fromExit, fromCommit }
  })

/**
 * Revocation latency across nodes: two `khala serve` on one database, a socket on node B, `khala revoke` as a
 * process of its own; the time to the socket's close, from the command's exit and from its confirmation (printed
 * once the revocation committed). The close usually comes before the exit: the notification leaves at commit, and
 * the process then still closes its pool. With `KHALA_NOTIFY=false` on node B, its one-second poll alone carries it.
 */
export const revokeScenario = (options: RevokeOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    yield* khalaServe(url)
    const listening = yield* khalaServe(url)
    const polling = yield* khalaServe(url, { KHALA_NOTIFY: "false" })
    const listen = yield* series(url, listening.port, options.runs, "LISTEN")
    const poll = yield* series(url, polling.port, options.runs, "poll only")
    const stats = (name: string, samples: ReadonlyArray<number>): ReadonlyArray<Figure> => {
      const sorted = [...samples].sort((a, b) => a - b)
      return (
        [["min", sorted[0] ?? Number.NaN], ["median", percentile(sorted, 50)], [
          "max",
          sorted[sorted.length - 1] ?? Number.NaN
        ]] as const
      ).map(([stat, value]) =>
        figure({
          scenario: "revoke",
          figure: `${name}, ${stat}`,
          unit: "ms",
          value,
          baseline: "poll interval",
          baselineValue: pollIntervalMs
        })
      )
    }
    return [
      ...stats("khala revoke exit → socket closed on another node", listen.fromExit),
      ...stats("khala revoke committed → socket closed on another node", listen.fromCommit),
      ...stats("committed → closed, KHALA_NOTIFY=false (poll only)", poll.fromCommit)
    ]
  }).pipe(Effect.scoped)
