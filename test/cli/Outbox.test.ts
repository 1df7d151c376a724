import { describe, expect, it } from "@effect/vitest"
import { Effect, Schedule } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { khalaEnv, range, sqlPublisher } from "../support/Khala.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { runCli, startServer, stopServer, tempDir } from "../support/Processes.js"

interface Received {
  readonly topic: string
  readonly watermarks: ReadonlyArray<number>
}

/** A webhook on the loopback that records every batch it is sent, answering each after a short delay. */
const webhook = Effect.acquireRelease(
  Effect.async<{ readonly url: string; readonly received: Array<Received>; close: () => void }>((resume) => {
    const received: Array<Received> = []
    const server = createServer((request, response) => {
      let body = ""
      request.on("data", (chunk) => (body += chunk))
      request.on("end", () => {
        const batch = JSON.parse(body) as { topic: string; rows: Array<{ watermark: number }> }
        received.push({ topic: batch.topic, watermarks: batch.rows.map((row) => row.watermark) })
        // slow enough that a kill lands mid-forwarding
        setTimeout(() => response.writeHead(204).end(), 15)
      })
    })
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address() as AddressInfo
      resume(Effect.succeed({ url: `http://127.0.0.1:${port}/hook`, received, close: () => server.close() }))
    })
  }),
  (hook) => Effect.sync(() => hook.close())
)

/**
 * One topic's batches in arrival order: each is consecutive watermarks and follows the one before, except once (at
 * the crash point) where it may repeat the batch whose acknowledgement was lost; together they are `1..count`.
 */
const checkTopic = (received: ReadonlyArray<Received>, topic: string, count: number) => {
  const batches = received.filter((b) => b.topic === topic)
  let repeats = 0
  const seen = new Set<number>()
  batches.forEach((batch, i) => {
    const first = batch.watermarks[0]!
    expect(batch.watermarks).toEqual(range(first, batch.watermarks.at(-1)!))
    const previous = batches[i - 1]
    if (previous === undefined) expect(first).toBe(1)
    else if (first !== previous.watermarks.at(-1)! + 1) {
      repeats++
      expect(first).toBe(previous.watermarks[0])
    }
    for (const w of batch.watermarks) seen.add(w)
  })
  expect(repeats).toBeLessThanOrEqual(1)
  expect(seen.size).toBe(count)
  expect(Math.max(...seen)).toBe(count)
}

describe.skipIf(!postgresAvailable)("khala serve with an outbox webhook", () => {
  it.live(
    "a SIGKILL mid-forwarding loses and reorders nothing: the next process goes on from the cursor",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const hook = yield* webhook
        const topics = ["runtime.run_summaries", "runtime.notifications"]
        const count = 150
        const env = khalaEnv(url, yield* tempDir, {
          KHALA_OUTBOX_WEBHOOK_URL: hook.url,
          KHALA_OUTBOX_TOPICS: topics.join(","),
          KHALA_OUTBOX_BATCH_SIZE: "5",
          KHALA_RETENTION: "false"
        })
        expect((yield* runCli(["migrate"], env)).code).toBe(0)
        const publisher = yield* sqlPublisher(url)
        for (const n of range(1, count)) {
          for (const topic of topics) yield* publisher.publish({ topic, docKey: `d${n}`, payload: { n } })
        }
        const rowsReceived = () => hook.received.reduce((sum, batch) => sum + batch.watermarks.length, 0)
        const waitFor = (done: () => boolean) =>
          Effect.sync(done).pipe(
            Effect.repeat({ until: (ok) => ok, schedule: Schedule.spaced("20 millis") }),
            Effect.timeout("30 seconds")
          )

        const first = yield* startServer(env)
        yield* waitFor(() => rowsReceived() >= 40)
        yield* stopServer(first, "SIGKILL")
        const atKill = rowsReceived()
        expect(atKill).toBeLessThan(2 * count)

        yield* startServer(env)
        const complete = () =>
          topics.every((topic) => hook.received.some((b) => b.topic === topic && b.watermarks.includes(count)))
        yield* waitFor(complete)
        for (const topic of topics) checkTopic(hook.received, topic, count)
        const cursors = yield* runCli(["outbox", "status"], env)
        expect(cursors.stdout).toContain(`webhook runtime.run_summaries delivered through ${count}`)
      })),
    { timeout: 270_000 }
  )

  it.live(
    "a bad webhook setting or outbox topic is refused at start, in one line",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const { url } = yield* testDatabase
        const dir = yield* tempDir
        for (
          const [setting, extra] of [
            ["KHALA_OUTBOX_WEBHOOK_URL", { KHALA_OUTBOX_WEBHOOK_URL: "ftp://example" }],
            ["KHALA_OUTBOX_TOPICS", {
              KHALA_OUTBOX_WEBHOOK_URL: "http://127.0.0.1:9/",
              KHALA_OUTBOX_TOPICS: "runtime.nope"
            }]
          ] as const
        ) {
          const bad = yield* runCli(["serve"], khalaEnv(url, dir, extra))
          expect(bad.code).toBe(1)
          expect(bad.stderr).toMatch(new RegExp(`^khala: bad configuration: .*${setting}.*$`, "m"))
          expect(bad.stderr).not.toMatch(/^\s+at /m)
        }
      })),
    { timeout: 180_000 }
  )
})
