import { NodeHttpClient } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import type { Duration } from "effect"
import { Effect } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import { makeWebhook } from "../../src/engine/OutboxWebhook.js"
import type { JournalRow } from "../../src/services/Journal.js"

const row = (watermark: number): JournalRow => ({
  topic: "runtime.run_summaries",
  watermark,
  docKey: `d${watermark}`,
  docVersion: 1,
  orgId: "org_a",
  payload: { n: watermark },
  pointer: false,
  deleted: false,
  payloadHash: "sha256:00",
  insertedAt: new Date(0)
})

/** A webhook whose answer to each request `respond` picks (a status, or a delay before a 204). */
const hook = (respond: (attempt: number) => number | { readonly delayMs: number }) =>
  Effect.acquireRelease(
    Effect.async<{ readonly url: string; readonly bodies: Array<unknown>; readonly close: () => void }>((resume) => {
      const bodies: Array<unknown> = []
      const server = createServer((request, response) => {
        let body = ""
        request.on("data", (chunk) => (body += chunk))
        request.on("end", () => {
          bodies.push(JSON.parse(body))
          const answer = respond(bodies.length)
          if (typeof answer === "number") response.writeHead(answer).end()
          else setTimeout(() => response.writeHead(204).end(), answer.delayMs)
        })
      })
      server.listen(0, "127.0.0.1", () => {
        const { port } = server.address() as AddressInfo
        resume(Effect.succeed({ url: `http://127.0.0.1:${port}/`, bodies, close: () => server.closeAllConnections() }))
      })
    }),
    (server) => Effect.sync(() => server.close())
  )

const sink = (url: string, timeout: Duration.DurationInput = "2 seconds") =>
  makeWebhook({ name: "webhook", url, timeout, retries: 2 })

describe("outbox webhook sink", () => {
  it.live("POSTs the rows as JSON, retrying a failed request", () =>
    Effect.scoped(Effect.gen(function*() {
      const server = yield* hook((attempt) => (attempt < 3 ? 500 : 204))
      yield* (yield* sink(server.url)).deliver("runtime.run_summaries", [row(1), row(2)])
      expect(server.bodies).toHaveLength(3)
      expect(server.bodies[2]).toMatchObject({
        sink: "webhook",
        topic: "runtime.run_summaries",
        rows: [{ watermark: 1, doc_key: "d1", payload: { n: 1 } }, { watermark: 2, doc_key: "d2" }]
      })
    })).pipe(Effect.provide(NodeHttpClient.layerUndici)))

  it.live("fails with OutboxDeliveryError once its retries are spent, or when the webhook does not answer in time", () =>
    Effect.scoped(Effect.gen(function*() {
      const down = yield* hook(() => 503)
      const refused = yield* Effect.flip((yield* sink(down.url)).deliver("runtime.run_summaries", [row(1)]))
      expect(refused).toMatchObject({ _tag: "OutboxDeliveryError", sink: "webhook", topic: "runtime.run_summaries" })
      // the first attempt and two retries
      expect(down.bodies).toHaveLength(3)
      const slow = yield* hook(() => ({ delayMs: 1500 }))
      const late = yield* Effect.flip((yield* sink(slow.url, "100 millis")).deliver("runtime.run_summaries", [row(1)]))
      expect(late._tag).toBe("OutboxDeliveryError")
      expect(late.message).toContain("no answer within")
    })).pipe(Effect.provide(NodeHttpClient.layerUndici)))
})
