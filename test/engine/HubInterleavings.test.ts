import { describe, expect, layer } from "@effect/vitest"
import { Effect, Fiber, Runtime, Stream } from "effect"
import fc from "fast-check"
import type { Batch } from "../../src/services/Hub.js"
import { Audience, Hub } from "../../src/services/Hub.js"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import type { Services } from "../support/Providers.js"
import { providers } from "../support/Providers.js"

/** What a scenario does, step by step; clients act concurrently with the appends. */
type Step =
  | { readonly _tag: "append"; readonly count: number; readonly org: "a" | "b" }
  | { readonly _tag: "connect"; readonly client: number }
  | { readonly _tag: "disconnect"; readonly client: number }
  | { readonly _tag: "pause" }

const step: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    _tag: fc.constant("append" as const),
    count: fc.integer({ min: 1, max: 4 }),
    org: fc.constantFrom("a" as const, "b" as const)
  }),
  fc.record({ _tag: fc.constant("connect" as const), client: fc.nat(2) }),
  fc.record({ _tag: fc.constant("disconnect" as const), client: fc.nat(2) }),
  fc.constant({ _tag: "pause" as const })
)

let run = 0

/**
 * Three clients of org "a" connect, disconnect and resume from the watermark they last persisted, while rows of
 * orgs "a" and "b" are appended; one takes live batches from its stream, two are handed them by the tail, one of
 * which refuses some. Whatever the interleaving, each client must end up with exactly org a's rows, each once, in
 * watermark order (I4, I7).
 */
const check = (steps: ReadonlyArray<Step>, refusals: ReadonlyArray<boolean>) =>
  Effect.scoped(Effect.gen(function*() {
    const hub = yield* Hub
    const publisher = yield* Publisher
    const topic = `prop.hub_${run++}`
    yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
    let appended = 0

    interface Client {
      persisted: number
      received: Array<number>
      fiber: Fiber.RuntimeFiber<void, unknown> | undefined
      /** How the client takes live batches: from its stream, or handed by the tail, accepting all or some. */
      readonly live: "stream" | "handed" | "refusing"
    }
    const clients: Array<Client> = (["stream", "handed", "refusing"] as const).map((live) => ({
      persisted: 0,
      received: [],
      fiber: undefined,
      live
    }))
    let offered = 0

    // a client applies a batch and persists its watermark
    const apply = (client: Client, batch: Batch) => {
      for (const u of batch.updates) client.received.push(u.watermark)
      client.persisted = batch.through
    }

    const connect = (client: Client) =>
      Effect.gen(function*() {
        if (client.fiber !== undefined) return
        const onLive = client.live === "stream" ? undefined : (batch: Batch) => {
          // a refusing client turns batches down in a random pattern, as a socket over its send limit does
          if (client.live === "refusing" && refusals.length > 0 && refusals[offered++ % refusals.length]) return false
          apply(client, batch)
          return true
        }
        const options = { topic, after: client.persisted, audience: Audience.org("a"), batchSize: 3, onLive }
        // the stream client uses the stream API, the others the loop sessions use
        client.fiber = yield* (client.live === "stream"
          ? hub.subscribe(options).pipe(Stream.runForEach((batch) => Effect.sync(() => apply(client, batch))))
          : hub.follow(options, (batch) => Effect.sync(() => apply(client, batch)))).pipe(Effect.forkScoped)
      })

    const disconnect = (client: Client) =>
      Effect.gen(function*() {
        if (client.fiber === undefined) return
        yield* Fiber.interrupt(client.fiber)
        client.fiber = undefined
      })

    for (const s of steps) {
      switch (s._tag) {
        case "append":
          for (let i = 0; i < s.count; i++) {
            yield* publisher.publish({ topic, docKey: `d${appended++}`, docVersion: 1, orgId: s.org, payload: i })
          }
          break
        case "connect":
          yield* connect(clients[s.client]!)
          break
        case "disconnect":
          yield* disconnect(clients[s.client]!)
          break
        case "pause":
          yield* Effect.sleep("2 millis")
      }
    }
    for (const client of clients) yield* connect(client)
    const rows = (yield* (yield* Journal).read(topic, 0, 10_000)).rows
    const expected = rows.filter((r) => r.orgId === "a").map((r) => r.watermark)
    const head = rows.length
    yield* Effect.forEach(clients, (client) =>
      Effect.gen(function*() {
        while (client.persisted < head) yield* Effect.sleep("1 millis")
      }).pipe(Effect.timeout("10 seconds")))
    for (const client of clients) expect(client.received).toEqual(expected)
  }))

describe.each(providers)("hub under random appends, disconnects and resumes (property): $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 360_000, excludeTestServices: true })((it) => {
      it.effect("every client receives exactly its org's suffix, once, in order", () =>
        Effect.gen(function*() {
          const runtime = yield* Effect.runtime<Services>()
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(
                fc.array(step, { maxLength: 30 }),
                fc.array(fc.boolean(), { maxLength: 5 }),
                (steps, refusals) => Runtime.runPromise(runtime)(check(steps, refusals))
              ),
              { numRuns: provider.name === "memory" ? 60 : 15 }
            )
          )
        }), { timeout: 360_000 })
    })
  })
})
