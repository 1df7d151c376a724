/**
 * `GET /metrics` of a real `khala serve` (docs/metrics.md): after clients of the `phoenix` package subscribe, replay and
 * receive live rows, and after refusals, the series count exactly what happened.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { range, sqlPublisher, startKhala, token } from "../support/Khala.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"

import { upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"

/** A scrape: the samples by series (`name{labels}` as exposed), and the text. */
const scrape = (port: number) =>
  Effect.promise(async () => {
    const response = await fetch(`http://127.0.0.1:${port}/metrics`)
    const text = await response.text()
    const samples = new Map<string, number>()
    for (const line of text.split("\n")) {
      if (line === "" || line.startsWith("#")) continue
      const at = line.lastIndexOf(" ")
      samples.set(line.slice(0, at), Number(line.slice(at + 1)))
    }
    return { status: response.status, contentType: response.headers.get("content-type"), text, samples }
  })

/**
 * A histogram series as Prometheus reads it: its buckets in increasing bounds, each counting at least the observations
 * of the one before, the last (`+Inf`) all `count` of them, and a positive sum of what they observed.
 */
const expectHistogram = (samples: ReadonlyMap<string, number>, name: string, labels: string, count: number) => {
  const prefix = `${name}_bucket{${labels},le="`
  const buckets = [...samples].flatMap(([series, value]) =>
    series.startsWith(prefix)
      ? [{ le: Number(series.slice(prefix.length, -2).replace("+Inf", "Infinity")), value }]
      : []
  )
  expect(buckets.length).toBeGreaterThan(1)
  for (let i = 1; i < buckets.length; i++) {
    expect(buckets[i]!.le).toBeGreaterThan(buckets[i - 1]!.le)
    expect(buckets[i]!.value).toBeGreaterThanOrEqual(buckets[i - 1]!.value)
  }
  expect(buckets.at(-1)).toEqual({ le: Infinity, value: count })
  expect(samples.get(`${name}_count{${labels}}`)).toBe(count)
  expect(samples.get(`${name}_sum{${labels}}`)).toBeGreaterThan(0)
}

describe.skipIf(!postgresAvailable)("metrics", () => {
  it.live(
    "series count sockets, joins, replays, live writes, refusals and retention",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { server } = yield* startKhala(db.url, { KHALA_RETENTION_INTERVAL: "1 seconds" })
        const sql = yield* sqlPublisher(db.url)
        yield* sql.publishAll(range(1, 3).map((i) => ({ docKey: `d${i}`, payload: { i } })))
        const jwt = yield* token({ org: "org_a", scopes: [runs] })

        const web = yield* connectJoined({
          port: server.port,
          token: jwt,
          joinParams: { client_build_id: "web-1.2.3", protocol_version: 1 }
        })
        const plain = yield* connectJoined({ port: server.port, token: jwt })
        for (const { client } of [web, plain]) {
          yield* subscribeOk(client, { topics: [runs] })
          yield* client.waitForReplayComplete(runs)
        }
        // one live row, written to both sockets
        yield* sql.publish({ docKey: "d4", payload: { i: 4 } })
        for (const { client } of [web, plain]) yield* client.waitForWatermark(runs, 4)

        // refusals: at the upgrade, and on an open socket
        expect((yield* upgradeOutcome({ port: server.port })).status).toBe(401)
        expect((yield* upgradeOutcome({ port: server.port, token: "not-a-jwt" })).status).toBe(401)
        const forbidden = yield* plain.client.subscribe({ topics: ["runtime.notifications"] })
        expect(forbidden.status).toBe("error")
        const third = yield* connectJoined({ port: server.port, token: jwt })
        const stale = yield* third.client.subscribe({ topics: [runs], resume_after: [{ topic: runs, watermark: 99 }] })
        expect(stale.response.code).toBe("stale_cursor")

        yield* sql.publish({ docKey: "d5", payload: { i: 5 } })
        for (const { client } of [web, plain]) yield* client.waitForWatermark(runs, 5)

        const t = `topic="${runs}"`
        // the retention gauges come with the first retention run (every second here)
        let scraped = yield* scrape(server.port)
        yield* waitUntil("the retention gauges", () => scraped.samples.has(`khala_retention_floor{${t}}`), {
          timeoutMs: 10_000
        }).pipe(Effect.race(Effect.forever(Effect.flatMap(
          Effect.sleep("100 millis"),
          () => Effect.map(scrape(server.port), (s) => (scraped = s))
        ))))
        const { samples } = scraped
        expect(scraped.status).toBe(200)
        expect(scraped.contentType).toContain("text/plain; version=0.0.4")
        expect(scraped.text).toContain("# TYPE khala_live_lag_seconds histogram")
        expect(scraped.text).toContain("# TYPE khala_joins_total counter")
        expect(scraped.text).toContain("# TYPE khala_sockets gauge")
        expect(scraped.text).toContain("# HELP khala_sockets Open WebSocket connections")

        expect(samples.get("khala_sockets")).toBe(3)
        expect(samples.get("khala_joins_total")).toBe(3)
        expect(samples.get(`khala_clients{client_build="web-1.2.3",protocol_version="1"}`)).toBe(1)
        expect(samples.get(`khala_clients{client_build="none",protocol_version="none"}`)).toBe(2)
        expect(samples.get(`khala_subscriptions{${t}}`)).toBe(2)
        expect(samples.get(`khala_subscribes_total{${t}}`)).toBe(2)
        // three rows replayed to each of the two sockets; the live rows are not replays
        expect(samples.get(`khala_replay_rows_total{${t}}`)).toBe(6)
        expect(samples.get(`khala_replay_duration_seconds_count{${t}}`)).toBe(2)
        // rows 4 and 5, live, to both sockets: one write each
        expect(samples.get(`khala_live_lag_seconds_count{${t}}`)).toBe(4)
        expect(samples.get(`khala_live_lag_seconds_bucket{${t},le="+Inf"}`)).toBe(4)
        expectHistogram(samples, "khala_live_lag_seconds", t, 4)
        expectHistogram(samples, "khala_replay_duration_seconds", t, 2)
        expect(samples.get(`khala_upgrade_refusals_total{reason="missing_token"}`)).toBe(1)
        expect(samples.get(`khala_upgrade_refusals_total{reason="malformed"}`)).toBe(1)
        expect(samples.get(`khala_refusals_total{reason="forbidden_topic"}`)).toBe(1)
        expect(samples.get(`khala_refusals_total{reason="stale_cursor"}`)).toBe(1)
        expect(samples.get(`khala_stale_cursors_total{${t},reason="past_head"}`)).toBe(1)
        expect(samples.get(`khala_journal_reads_total{source="subscription"}`)).toBeGreaterThanOrEqual(2)
        expect(samples.get(`khala_journal_reads_total{source="tail"}`)).toBeGreaterThanOrEqual(1)
        expect(samples.get("khala_head_polls_total")).toBeGreaterThan(0)

        expect(samples.get(`khala_retention_floor{${t}}`)).toBe(0)
        const age = samples.get(`khala_oldest_retained_age_seconds{${t}}`)!
        expect(age).toBeGreaterThanOrEqual(0)
        expect(age).toBeLessThan(60)
        expect(samples.get("khala_slow_consumer_closes_total")).toBeUndefined()
        // no label beyond those recorded
        expect(scraped.text).not.toContain("otel_scope_name")
        // no series names a document, an org or a user
        expect(scraped.text).not.toMatch(/d[1-5]"|org_a|user-1/)

        // a closed socket leaves the gauges
        yield* plain.client.disconnect
        yield* waitUntil("the sockets gauge to drop", () => scraped.samples.get("khala_sockets") === 2, {
          timeoutMs: 10_000
        }).pipe(Effect.race(Effect.forever(Effect.flatMap(
          Effect.sleep("50 millis"),
          () => Effect.map(scrape(server.port), (s) => (scraped = s))
        ))))
        expect(scraped.samples.get(`khala_subscriptions{${t}}`)).toBe(1)
        expect(scraped.samples.get(`khala_clients{client_build="none",protocol_version="none"}`)).toBe(1)
      })),
    30_000
  )

  it.live("KHALA_METRICS=false records nothing", () =>
    Effect.scoped(Effect.gen(function*() {
      const db = yield* testDatabase
      const { server } = yield* startKhala(db.url, { KHALA_METRICS: "false" })
      const { client } = yield* connectJoined({
        port: server.port,
        token: yield* token({ org: "org_a", scopes: [runs] })
      })
      yield* subscribeOk(client, { topics: [runs] })
      const { samples, status } = yield* scrape(server.port)
      expect(status).toBe(200)
      expect(samples.has("khala_sockets")).toBe(false)
      expect(samples.has("khala_joins_total")).toBe(false)
    })), 30_000)
})
