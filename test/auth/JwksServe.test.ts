/**
 * `khala serve` with a JWKS URL beside its HS256 keyring (protocol.md §8): RS256 and ES256 tokens from the issuer's
 * keys are accepted at the upgrade and by hydration, HS256 ones still are, and a token signed by a key the set does
 * not list is refused.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { exportJWK, generateKeyPair, SignJWT } from "jose"
import { randomUUID } from "node:crypto"
import { createServer } from "node:http"
import { hsKeys, startKhala, token } from "../support/Khala.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"
import { upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"

const keyPair = (alg: "RS256" | "ES256", kid: string) =>
  Effect.promise(async () => {
    const { privateKey, publicKey } = await generateKeyPair(alg)
    const sign = () => {
      const now = Math.floor(Date.now() / 1000)
      return new SignJWT({ oa_org_id: "org_a", oa_sync_scopes: [runs] })
        .setProtectedHeader({ alg, kid })
        .setSubject("user_1")
        .setJti(randomUUID())
        .setIssuedAt(now)
        .setExpirationTime(now + 600)
        .setIssuer("https://issuer.example")
        .sign(privateKey)
    }
    return { jwk: { ...(await exportJWK(publicKey)), kid }, sign: Effect.promise(sign) }
  })

describe.skipIf(!postgresAvailable)("khala serve with a JWKS URL", () => {
  it.live("accepts RS256 and ES256 tokens of the listed keys and HS256 ones, refuses an unlisted key", () =>
    Effect.scoped(Effect.gen(function*() {
      const rsa = yield* keyPair("RS256", "rsa-1")
      const ec = yield* keyPair("ES256", "ec-1")
      const stranger = yield* keyPair("ES256", "ec-9")
      const jwks = JSON.stringify({ keys: [rsa.jwk, ec.jwk] })
      const server = yield* Effect.acquireRelease(
        Effect.async<ReturnType<typeof createServer>>((resume) => {
          const server = createServer((_request, response) => {
            response.writeHead(200, { "content-type": "application/json" })
            response.end(jwks)
          })
          server.listen(0, "127.0.0.1", () => {
            resume(Effect.succeed(server))
          })
        }),
        (server) =>
          Effect.async<void>((resume) => {
            server.close(() => resume(Effect.void))
          })
      )
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const db = yield* testDatabase
      const khala = yield* startKhala(db.url, {
        KHALA_AUTH_JWKS_URL: `http://127.0.0.1:${port}/jwks.json`,
        KHALA_AUTH_ISSUER: "https://issuer.example"
      })
      const outcome = (jwt: string) =>
        Effect.map(upgradeOutcome({ port: khala.server.port, token: jwt }), (result) => result.status)
      const hydrate = (jwt: string) =>
        Effect.promise(() =>
          fetch(khala.server.url(`/sync/v1/topics/${runs}/documents`), { headers: { authorization: `Bearer ${jwt}` } })
            .then((response) => response.status)
        )
      const rs = yield* rsa.sign
      const es = yield* ec.sign
      expect(yield* Effect.all([outcome(rs), outcome(es), hydrate(rs), hydrate(es)])).toEqual([
        "open",
        "open",
        200,
        200
      ])
      expect(yield* outcome(yield* stranger.sign)).toBe(401)
      // the HS256 keyring of the test servers still verifies, with the issuer it is configured to check
      const now = Math.floor(Date.now() / 1000)
      const hs = yield* Effect.promise(() =>
        new SignJWT({ oa_org_id: "org_a", oa_sync_scopes: [runs] })
          .setProtectedHeader({ alg: "HS256", kid: hsKeys[0].kid })
          .setSubject("user_2")
          .setJti(randomUUID())
          .setIssuedAt(now)
          .setExpirationTime(now + 600)
          .setIssuer("https://issuer.example")
          .sign(new TextEncoder().encode(hsKeys[0].secret))
      )
      expect(yield* outcome(hs)).toBe("open")
      expect(yield* outcome(yield* token({ org: "org_a", scopes: [runs] }))).toBe(401)
    })))
})
