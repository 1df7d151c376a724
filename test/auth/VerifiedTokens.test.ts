/**
 * Remembered tokens must be answered as the verifier would answer them: accepted ones until their time is up or the
 * cache forgets them, refused ones checked every time, and an expired one refused however it is remembered.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, TestClock } from "effect"
import * as AuthJose from "../../src/auth/AuthJose.js"
import * as VerifiedTokens from "../../src/auth/VerifiedTokens.js"
import type { TokenVerifier } from "../../src/services/TokenVerifier.js"

const encoder = new TextEncoder()
const auth = AuthJose.make([{ kid: "k1", secret: encoder.encode("first-secret-0123456789-abcdefghijklmnop") }])
const stranger = AuthJose.make([{ kid: "k1", secret: encoder.encode("nobody-knows-this-0123456789-abcdefghijk") }])

/** `auth`'s verifier, counting the tokens it is asked to check. */
const counting = () => {
  const calls = { count: 0 }
  const verifier: TokenVerifier["Type"] = {
    verify: (token) => Effect.suspend(() => (calls.count++, auth.verify(token)))
  }
  return { calls, verifier }
}

const sign = (ttlSeconds = 3600, subject = "user_1") =>
  auth.sign({ subject, orgId: "org_a", scopes: ["runtime.run_summaries"], ttlSeconds })

describe("VerifiedTokens", () => {
  it.effect("an accepted token is checked once while remembered, and again once its time to live has passed", () =>
    Effect.gen(function*() {
      const { calls, verifier } = counting()
      const cached = yield* VerifiedTokens.cached(verifier, { timeToLive: "30 seconds" })
      const token = yield* sign()
      const first = yield* cached.verify(token)
      expect(yield* cached.verify(token)).toEqual(first)
      yield* TestClock.adjust("29 seconds")
      yield* cached.verify(token)
      expect(calls.count).toBe(1)
      yield* TestClock.adjust("2 seconds")
      expect((yield* cached.verify(token)).subject).toBe("user_1")
      expect(calls.count).toBe(2)
    }))

  it.effect("a refused token is checked every time, and stays refused", () =>
    Effect.gen(function*() {
      const { calls, verifier } = counting()
      const cached = yield* VerifiedTokens.cached(verifier)
      const forged = yield* stranger.sign({ subject: "s", orgId: "o", scopes: [], ttlSeconds: 60 })
      for (let i = 0; i < 3; i++) expect((yield* Effect.flip(cached.verify(forged))).reason).toBe("bad_signature")
      expect(calls.count).toBe(3)
    }))

  it.effect("a remembered token is refused as expired when the verifier would refuse it, not later", () =>
    Effect.gen(function*() {
      const { verifier } = counting()
      const cached = yield* VerifiedTokens.cached(verifier, { timeToLive: "1 hour" })
      const token = yield* sign(60)
      yield* cached.verify(token)
      // exp is 60 s away, and the verifier grants 30 s of clock skew
      yield* TestClock.adjust("89 seconds")
      expect((yield* cached.verify(token)).subject).toBe("user_1")
      yield* TestClock.adjust("2 seconds")
      expect((yield* Effect.flip(cached.verify(token))).reason).toBe("expired")
      expect((yield* Effect.flip(auth.verify(token))).reason).toBe("expired")
    }))

  it.effect("beyond its capacity it forgets tokens", () =>
    Effect.gen(function*() {
      const { calls, verifier } = counting()
      const cached = yield* VerifiedTokens.cached(verifier, { capacity: 2 })
      const tokens = yield* Effect.all(["a", "b", "c", "d", "e"].map((subject) => sign(3600, subject)))
      for (const token of tokens) yield* cached.verify(token)
      expect(calls.count).toBe(5)
      expect((yield* cached.verify(tokens[0]!)).subject).toBe("a")
      expect(calls.count).toBe(6)
    }))
})
