import { Effect } from "effect"
import { clientFleet } from "./clients.js"
import type { QueryCounts } from "./pgProxy.js"
import { countingPgProxy, totalQueries } from "./pgProxy.js"
import { benchDatabase } from "./publish.js"
import type { Figure } from "./report.js"
import { figure } from "./report.js"
import { benchPublisher, publishPaced } from "./runtime.js"
import { khalaServe, socketUrl } from "./serve.js"
import { benchToken } from "./token.js"
import { now } from "./workload.js"

export interface WakeupOptions {
  readonly idleSockets: number
  readonly busySubscribers: number
  readonly rate: number
  readonly seconds: number
}

/** The poll interval the server runs with (its default): an idle server should cost one head query per interval. */
const pollIntervalMs = 10

/** Queries counted over a window: per second, and in all. */
const overWindow = (counts: () => QueryCounts, run: Effect.Effect<unknown>) =>
  Effect.gen(function*() {
    const before = totalQueries(counts())
    const startedAt = now()
    yield* run
    const queries = totalQueries(counts()) - before
    return { queries, perSecond: queries / ((now() - startedAt) / 1000) }
  })

/**
 * Wake-up cost: the Postgres queries one `khala serve` makes, idle (a few subscribed sockets, nothing published) and
 * busy (subscribers, appends from the bench process), counted by a proxy between it and Postgres.
 */
export const wakeupScenario = (options: WakeupOptions) =>
  Effect.gen(function*() {
    const { url } = yield* benchDatabase
    const target = new URL(url)
    const proxy = yield* countingPgProxy({ host: target.hostname, port: Number(target.port || 5432) })
    const proxied = new URL(url)
    proxied.hostname = "127.0.0.1"
    proxied.port = String(proxy.port)
    // the publisher is the runtime's, on its own connections: only the server's queries go through the proxy
    const publisher = yield* benchPublisher(url)
    const serve = yield* khalaServe(proxied.toString(), { KHALA_POLL_INTERVAL_MS: String(pollIntervalMs) })
    const fleet = yield* clientFleet(1)
    const socket = socketUrl(serve.port, yield* benchToken)

    yield* fleet.open({ url: socket, sockets: options.idleSockets, resumeAfter: 0, mode: "count" })
    yield* Effect.sleep("1 second")
    const idle = yield* overWindow(proxy.counts, Effect.sleep(options.seconds * 1000))

    const more = Math.max(0, options.busySubscribers - options.idleSockets)
    yield* fleet.open({ url: socket, sockets: more, resumeAfter: 0, mode: "count" })
    yield* Effect.sleep("1 second")
    let appended = 0
    const busy = yield* overWindow(
      proxy.counts,
      Effect.map(publishPaced(publisher, options), (published) => appended = published.appended)
    )
    yield* fleet.close

    const scenario = "wake-up cost, queries khala serve makes to Postgres"
    const figures: Array<Figure> = [
      figure({
        scenario: `${scenario}, idle, ${options.idleSockets} subscribed sockets`,
        figure: "queries/s",
        unit: "queries/s",
        value: idle.perSecond,
        baseline: `one head poll per ${pollIntervalMs} ms (KHALA_POLL_INTERVAL_MS)`,
        baselineValue: 1000 / pollIntervalMs
      }),
      figure({
        scenario: `${scenario}, busy, ${options.busySubscribers} subscribers × ${options.rate} appends/s`,
        figure: "queries/s",
        unit: "queries/s",
        value: busy.perSecond,
        baseline: "the same server idle",
        baselineValue: idle.perSecond
      }),
      {
        scenario: `${scenario}, busy, ${options.busySubscribers} subscribers × ${options.rate} appends/s`,
        figure: "queries per append",
        unit: "queries",
        value: busy.queries / appended,
        baseline: "",
        baselineValue: NaN,
        ratio: NaN
      }
    ]
    return figures
  }).pipe(Effect.scoped)
