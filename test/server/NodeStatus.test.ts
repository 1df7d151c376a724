/**
 * The node's status (`GET /statusz`) from its own state: subscriptions counted by topic while they run and gone when
 * they end, the drain's state, and an answer in the wire's snake_case that the command line decodes back.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Layer, Schema } from "effect"
import * as Drain from "../../src/server/Drain.js"
import * as NodeStatus from "../../src/server/NodeStatus.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import * as Subscribers from "../../src/server/Subscribers.js"

const node = Layer.mergeAll(
  Layer.effect(Drain.Drain, Drain.make(Duration.zero)),
  Subscribers.layer,
  ServerConfig.layer({ maxSockets: 50 })
)

describe("the node's status", () => {
  it.scoped("counts subscriptions by topic while they run, and says when the node drains", () =>
    Effect.gen(function*() {
      const subscribers = yield* Subscribers.Subscribers
      const end = yield* Deferred.make<void>()
      const hold = (topic: string) => Effect.fork(subscribers.hold(topic)(Deferred.await(end)))
      const held = [yield* hold("b.topic"), yield* hold("a.topic"), yield* hold("b.topic")]
      // a subscription that fails ends its count too
      yield* Effect.flip(subscribers.hold("a.topic")(Effect.fail("refused")))
      yield* Effect.yieldNow()

      expect(yield* NodeStatus.current).toMatchObject({
        draining: false,
        sockets: 0,
        maxSockets: 50,
        subscriptions: 3,
        topics: [{ topic: "a.topic", subscribers: 1 }, { topic: "b.topic", subscribers: 2 }]
      })

      yield* Fiber.interrupt(held[0]!)
      expect((yield* NodeStatus.current).topics).toEqual([
        { topic: "a.topic", subscribers: 1 },
        { topic: "b.topic", subscribers: 1 }
      ])
      yield* Deferred.succeed(end, undefined)
      yield* Fiber.join(held[1]!)
      yield* Fiber.join(held[2]!)
      expect(yield* NodeStatus.current).toMatchObject({ subscriptions: 0, topics: [] })

      yield* (yield* Drain.Drain).run
      expect((yield* NodeStatus.current).draining).toBe(true)
    }).pipe(Effect.provide(node)))

  it.effect("its JSON is snake_case, and decodes back to the same status", () =>
    Effect.gen(function*() {
      const status: NodeStatus.NodeStatus = {
        draining: false,
        sockets: 2,
        maxSockets: 10_000,
        subscriptions: 3,
        topics: [{ topic: "runtime.run_summaries", subscribers: 3 }],
        uptimeSeconds: 12
      }
      const json = yield* Schema.encode(NodeStatus.NodeStatus)(status)
      expect(Object.keys(json)).toEqual([
        "draining",
        "sockets",
        "max_sockets",
        "subscriptions",
        "topics",
        "uptime_seconds"
      ])
      expect(yield* Schema.decodeUnknown(NodeStatus.NodeStatus)(JSON.parse(JSON.stringify(json)))).toEqual(status)
      const negative = yield* Effect.flip(
        Schema.decodeUnknown(NodeStatus.NodeStatus)({ ...json, topics: [{ topic: "t", subscribers: -1 }] })
      )
      expect(negative._tag).toBe("ParseError")
    }))
})
