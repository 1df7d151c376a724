/**
 * Re-subscribing to a subscribed topic (protocol.md §5, I4): the new subscription replaces the old one completely. After
 * the reply to the new subscribe, no frame of the old subscription follows, the topic's updates continue exactly
 * after the new resume point, and the new subscription sends its own `replay_complete`. Checked on one session over
 * the memory layers under an adversarial scheduler, across seeds: it must hold in every interleaving.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import * as KhalaMemory from "../../src/layers/KhalaMemory.js"
import type * as PhoenixFrame from "../../src/protocol/PhoenixFrame.js"
import { TopicCatalog } from "../../src/protocol/TopicCatalog.js"
import * as Compatibility from "../../src/server/Compatibility.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import * as Subscribers from "../../src/server/Subscribers.js"
import { makeSession } from "../../src/server/SyncSession.js"
import * as TokenRefresh from "../../src/server/TokenRefresh.js"
import { Publisher } from "../../src/services/Publisher.js"
import { ShufflingScheduler } from "../support/Interleavings.js"
import { range } from "../support/Khala.js"

const runs = "runtime.run_summaries"
const seeds = range(1, 12)
const rounds = 24

type Sent = [string | null, string | null, string, string, any]

const decoder = new TextDecoder()

/** One session: join, subscribe, then re-subscribe from what it received while rows are appended. */
const scenario = Effect.gen(function*() {
  const catalog = yield* TopicCatalog
  const publisher = yield* Publisher
  const sent: Array<Sent> = []
  let ids = 0
  const session = yield* makeSession({
    policy: {
      credentials: yield* TokenRefresh.make({
        subject: "user_1",
        orgId: "org_a",
        scopes: [runs],
        tokenId: "t1",
        expiresAt: new Date(Date.now() + 3600_000),
        validUntil: new Date(Date.now() + 3630_000)
      }),
      verify: () => Effect.die("no sync:auth in this test"),
      compatibility: Compatibility.make(ServerConfig.defaults),
      subscribeRate: () => 0
    },
    catalog,
    socket: {
      send: (text) => Effect.sync(() => void sent.push(JSON.parse(text))),
      offer: (frames) => {
        for (const frame of frames) sent.push(JSON.parse(decoder.decode(frame)))
        return true
      },
      awaitRoom: Effect.void,
      fault: (cause) => Effect.failCause(cause).pipe(Effect.orDie),
      close: () => Effect.void
    },
    rateLimit: () => 0,
    newId: () => `id-${ids++}`
  })
  const frame = (ref: string, event: string, payload: unknown): PhoenixFrame.Frame => ({
    joinRef: "j",
    ref,
    topic: "sync:v1",
    event,
    payload
  })
  yield* session.handle(frame("j", "phx_join", {}))

  let published = 0
  const writer = yield* Effect.fork(Effect.forever(Effect.gen(function*() {
    published++
    yield* publisher.publishAll([{
      topic: runs,
      docKey: `org_a:r${published}`,
      docVersion: 1,
      orgId: "org_a",
      payload: { n: published }
    }])
    yield* Effect.sleep("1 millis")
  })))

  let resumeAfter = 0
  for (let round = 0; round < rounds; round++) {
    yield* session.handle(
      frame(`s${round}`, "sync:subscribe", { topics: [runs], resume_after: { [runs]: resumeAfter } })
    )
    const reply = sent.findIndex((f) => f[3] === "phx_reply" && f[1] === `s${round}`)
    expect(sent[reply]?.[4].status).toBe("ok")
    const since = () => sent.slice(reply + 1).filter((f) => f[3] === "sync:update_batch")
    // the new subscription ends its own replay
    const deadline = Date.now() + 5_000
    while (!since().some((f) => f[4].replay_complete === true)) {
      if (Date.now() > deadline) {
        return yield* Effect.die(new Error(`round ${round}: no replay_complete after the reply`))
      }
      yield* Effect.sleep("1 millis")
    }
    // and what follows the reply is exactly the suffix after the resume point: nothing of the old subscription
    const received = since().flatMap((f) => f[4].updates.map((u: any) => u.watermark))
    expect({ round, received }).toEqual({ round, received: range(resumeAfter + 1, resumeAfter + received.length) })
    if (received.length > 0) resumeAfter = received[received.length - 1]!
  }
  yield* Fiber.interrupt(writer)
})

describe("re-subscribing", () => {
  it.live(
    "re-subscribing to a live topic while rows are appended: the old subscription sends nothing after the new reply",
    () =>
      Effect.forEach(seeds, (seed) =>
        Effect.scoped(scenario).pipe(
          Effect.provide(Layer.merge(KhalaMemory.layer(), Subscribers.layer)),
          Effect.withScheduler(new ShufflingScheduler(seed)),
          Effect.tapDefect(() => Effect.logError(`failed with seed ${seed}`))
        ), { discard: true }),
    { timeout: 180_000 }
  )
})
