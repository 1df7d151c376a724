/**
 * The drain's schedule (src/server/Drain.ts), on the test clock: sockets are closed with 1001 at times spread over the
 * window, not at its start; the drain ends once they are all closed; a socket that arrives while draining is closed
 * at once.
 */
import { describe, expect, it } from "@effect/vitest"
import { Duration, Effect, Fiber, TestClock } from "effect"
import { EventEmitter } from "node:events"
import type { WebSocket } from "ws"
import * as Drain from "../../src/server/Drain.js"

/** A socket whose peer answers a close at once (as `ws` does, its close event comes after the call). */
class FakeSocket extends EventEmitter {
  readyState = 1
  code: number | undefined
  close(code: number) {
    if (this.readyState !== 1) return
    this.code = code
    this.readyState = 2
    queueMicrotask(() => {
      this.readyState = 3
      this.emit("close", code)
    })
  }
  terminate() {
    this.close(1006)
  }
}

/** Runs a fake socket as the endpoint does: tracked until it closes. */
const hold = (drain: Context, socket: FakeSocket) =>
  Effect.scoped(Effect.zipRight(
    drain.track(socket as unknown as WebSocket),
    Effect.async<void>((resume) => {
      if (socket.readyState === 3) return resume(Effect.void)
      socket.once("close", () => resume(Effect.void))
    })
  )).pipe(Effect.fork)

type Context = Effect.Effect.Success<ReturnType<typeof Drain.make>>

describe("drain schedule", () => {
  it.effect("closes with 1001 spread over the window, then ends", () =>
    Effect.gen(function*() {
      const drain = yield* Drain.make(Duration.seconds(10))
      const sockets = Array.from({ length: 200 }, () => new FakeSocket())
      const held = yield* Effect.forEach(sockets, (socket) => hold(drain, socket))
      while ((yield* drain.sockets) < 200) yield* Effect.yieldNow()
      expect(yield* drain.draining).toBe(false)

      const running = yield* Effect.fork(drain.run)
      while (!(yield* drain.draining)) yield* Effect.yieldNow()
      const closedBySecond: Array<number> = []
      for (let second = 1; second <= 10; second++) {
        yield* TestClock.adjust("1 second")
        closedBySecond.push(sockets.filter((s) => s.code !== undefined).length)
      }
      yield* Fiber.join(running)
      yield* Effect.forEach(held, Fiber.join)

      expect(sockets.every((s) => s.code === 1001)).toBe(true)
      expect(yield* drain.sockets).toBe(0)
      // uniform times: about a tenth a second; a drain that closed everything at once would have 200 after 1 s
      expect(closedBySecond[0]!).toBeLessThan(60)
      expect(closedBySecond[4]!).toBeGreaterThan(60)
      expect(closedBySecond[4]!).toBeLessThan(140)
      expect(closedBySecond[9]).toBe(200)
      for (let i = 1; i < 10; i++) expect(closedBySecond[i]!).toBeGreaterThanOrEqual(closedBySecond[i - 1]!)
    }))

  it.effect("a socket that arrives while draining is closed at once; running it again waits for the same drain", () =>
    Effect.gen(function*() {
      const drain = yield* Drain.make(Duration.seconds(5))
      const early = new FakeSocket()
      yield* hold(drain, early)
      while ((yield* drain.sockets) < 1) yield* Effect.yieldNow()
      const first = yield* Effect.fork(drain.run)
      while (!(yield* drain.draining)) yield* Effect.yieldNow()
      const late = new FakeSocket()
      yield* hold(drain, late)
      while (late.code === undefined) yield* Effect.yieldNow()
      expect(late.code).toBe(1001)
      // closed at once: before the clock moved, while the socket held before waits for its time
      expect(early.code).toBeUndefined()
      const second = yield* Effect.fork(drain.run)
      yield* TestClock.adjust("5 seconds")
      yield* Fiber.join(first)
      yield* Fiber.join(second)
      expect(early.code).toBe(1001)
    }))
})
