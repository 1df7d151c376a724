import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, TestClock } from "effect"
import * as RevocationSet from "../../src/engine/RevocationSet.js"
import * as RevocationsMemory from "../../src/storage/memory/RevocationsMemory.js"

const alice = { subject: "alice", tokenId: "t-alice" }
const aliceOther = { subject: "alice", tokenId: "t-alice-2" }
const bob = { subject: "bob", tokenId: "t-bob" }
const at = (ms: number) => new Date(ms)

describe("revocations in memory", () => {
  it.effect("a jti names one token, a sub every token of it, each until its end", () =>
    Effect.gen(function*() {
      const set = yield* RevocationSet.make
      yield* set.apply([{ target: { tokenId: "t-alice" }, until: at(1000) }])
      expect(yield* Effect.all([set.isRevoked(alice), set.isRevoked(aliceOther), set.isRevoked(bob)])).toEqual([
        true,
        false,
        false
      ])
      yield* set.apply([{ target: { subject: "bob" }, until: at(2000) }])
      expect(yield* set.isRevoked({ subject: "bob", tokenId: "any" })).toBe(true)
      // the end is exclusive: at `until` the token is let in again
      yield* TestClock.setTime(1000)
      expect(yield* Effect.all([set.isRevoked(alice), set.isRevoked(bob)])).toEqual([false, true])
      yield* TestClock.setTime(2000)
      expect(yield* set.isRevoked(bob)).toBe(false)
    }))

  it.effect("a later revocation of the same target replaces it: one ending now lifts it", () =>
    Effect.gen(function*() {
      const set = yield* RevocationSet.make
      yield* set.apply([{ target: { subject: "alice" }, until: at(10_000) }])
      yield* TestClock.setTime(500)
      yield* set.apply([{ target: { subject: "alice" }, until: at(500) }])
      expect(yield* set.isRevoked(alice)).toBe(false)
      yield* set.apply([{ target: { subject: "alice" }, until: at(20_000) }])
      expect(yield* set.isRevoked(aliceOther)).toBe(true)
    }))

  it.effect("a waiting socket wakes on its own revocation only, and at once when already revoked", () =>
    Effect.gen(function*() {
      const set = yield* RevocationSet.make
      const aliceWaits = yield* Effect.fork(set.awaitRevoked(alice))
      const bobWaits = yield* Effect.fork(set.awaitRevoked(bob))
      yield* Effect.yieldNow()
      // an ended revocation, and another subject's, wake nobody
      yield* set.apply([{ target: { subject: "alice" }, until: at(0) }, { target: { subject: "carol" }, until: at(9) }])
      yield* Effect.yieldNow()
      expect(aliceWaits.unsafePoll()).toBe(null)
      yield* set.apply([{ target: { subject: "alice" }, until: at(1000) }])
      yield* Fiber.join(aliceWaits)
      expect(bobWaits.unsafePoll()).toBe(null)
      yield* set.apply([{ target: { tokenId: "t-bob" }, until: at(1000) }])
      yield* Fiber.join(bobWaits)
      // already revoked: no wait
      yield* set.awaitRevoked(aliceOther)
      yield* Fiber.interrupt(yield* Effect.fork(set.awaitRevoked({ subject: "dave", tokenId: "t-dave" })))
    }))

  it.effect("the memory service: revoke is in force at once", () =>
    Effect.gen(function*() {
      const revocations = yield* RevocationsMemory.make
      const waits = yield* Effect.fork(revocations.awaitRevoked(bob))
      yield* Effect.yieldNow()
      yield* revocations.revoke({ subject: "bob" }, at(60_000))
      yield* Fiber.join(waits)
      expect(yield* revocations.isRevoked(bob)).toBe(true)
      yield* TestClock.setTime(60_000)
      expect(yield* revocations.isRevoked(bob)).toBe(false)
    }))
})
