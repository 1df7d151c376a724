import { Effect } from "effect"
import type { Fleet } from "./clients.js"
import { clientFleet, processesFor } from "./clients.js"
import { rssKiB } from "./processes.js"
import { benchDatabase } from "./publish.js"
import { rawServer } from "./rawServer.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"
import { khalaServe, socketUrl } from "./serve.js"
import { benchToken } from "./token.js"

export interface MemoryOptions {
  readonly sockets: number
}

const warmupSockets = 100

/**
 * KiB of resident memory each idle subscribed socket adds to the server process `pid`. The server is warmed first
 * (sockets opened and closed), so that the code paths and heap a first socket brings are not charged to the lot.
 */
const perSocket = (fleet: Fleet, pid: number, url: string, sockets: number) =>
  Effect.gen(function*() {
    yield* fleet.open({ url, sockets: warmupSockets, resumeAfter: 0, mode: "count" })
    yield* fleet.close
    yield* Effect.sleep("1 second")
    const before = rssKiB(pid)
    yield* fleet.open({ url, sockets, resumeAfter: 0, mode: "count" })
    yield* Effect.sleep("2 seconds")
    const after = rssKiB(pid)
    yield* fleet.close
    return (after - before) / sockets
  })

/** Memory per idle subscribed socket of `khala serve`, against the raw `ws` server holding as many. */
export const memoryScenario = (options: MemoryOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const fleet = yield* clientFleet(processesFor(options.sockets))
    const token = yield* benchToken
    const khala = yield* Effect.scoped(Effect.flatMap(
      khalaServe(url),
      (serve) => perSocket(fleet, serve.pid, socketUrl(serve.port, token), options.sockets)
    ))
    const raw = yield* Effect.scoped(Effect.flatMap(
      rawServer,
      (server) => perSocket(fleet, server.pid, socketUrl(server.port, token), options.sockets)
    ))
    const figures: Array<Figure> = [
      figure({
        scenario: `memory, ${options.sockets} idle subscribed sockets`,
        figure: "server RSS per socket",
        unit: "KiB",
        value: khala,
        baseline: "raw ws server holding as many sockets",
        baselineValue: raw
      })
    ]
    return figures
  }).pipe(Effect.scoped)
