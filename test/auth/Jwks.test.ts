import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Duration, Effect, Either, Layer } from "effect"
import type { JWK } from "jose"
import { exportJWK, exportSPKI, generateKeyPair, SignJWT } from "jose"
import { createPublicKey, KeyObject, randomUUID } from "node:crypto"
import { writeFileSync } from "node:fs"
import { createServer } from "node:http"
import { join } from "node:path"
import * as AuthJose from "../../src/auth/AuthJose.js"
import * as JwksKeys from "../../src/auth/JwksKeys.js"
import { TokenVerifier } from "../../src/services/TokenVerifier.js"
import { tempDir } from "../support/Processes.js"

interface Pair {
  readonly kid: string
  readonly alg: "RS256" | "ES256"
  readonly privateKey: KeyObject
  readonly publicJwk: JWK
}

const pair = (kid: string, alg: "RS256" | "ES256") =>
  Effect.promise(async (): Promise<Pair> => {
    const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
    return { kid, alg, privateKey: KeyObject.from(privateKey), publicJwk: { ...(await exportJWK(publicKey)), kid } }
  })

const claims = (overrides: Record<string, unknown> = {}) => ({
  oa_org_id: "org_a",
  oa_sync_scopes: ["runtime.run_summaries"],
  ...overrides
})

const sign = (
  key: Pair,
  options: { header?: Record<string, unknown>; payload?: Record<string, unknown> } = {}
) =>
  Effect.promise(() => {
    const now = Math.floor(Date.now() / 1000)
    return new SignJWT(claims(options.payload))
      .setProtectedHeader({ alg: key.alg, kid: key.kid, ...options.header })
      .setSubject("user_1")
      .setJti(randomUUID())
      .setIssuedAt(now)
      .setExpirationTime(now + 600)
      .sign(key.privateKey)
  })

const reason = (verifier: TokenVerifier["Type"], token: string) =>
  Effect.map(Effect.flip(verifier.verify(token)), (error) => error.reason)

const keySet = (...pairs: ReadonlyArray<Pair>) => ({ keys: pairs.map((p) => p.publicJwk) })

const local = (keys: { keys: ReadonlyArray<JWK> }) =>
  ({ _tag: "Local", keys: Either.getOrThrow(JwksKeys.validateKeySet(keys)) }) as const

/** A JWKS endpoint on a loopback port, serving whatever `keys` holds now, counting its fetches. */
const jwksServer = (initial: { keys: ReadonlyArray<JWK> }) =>
  Effect.gen(function*() {
    const state = { keys: initial, fetches: 0 }
    const server = yield* Effect.acquireRelease(
      Effect.async<ReturnType<typeof createServer>>((resume) => {
        const server = createServer((_request, response) => {
          state.fetches++
          response.writeHead(200, { "content-type": "application/json" })
          response.end(JSON.stringify(state.keys))
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
    return { state, url: new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`) }
  })

describe("JWKS keyring", () => {
  it.live("accepts RS256 and ES256 tokens from a local key set, each by its kid", () =>
    Effect.gen(function*() {
      const rsa = yield* pair("rsa-1", "RS256")
      const ec = yield* pair("ec-1", "ES256")
      const verifier = AuthJose.makeVerifier({ hmac: [], jwks: local(keySet(rsa, ec)) })
      expect((yield* verifier.verify(yield* sign(rsa))).subject).toBe("user_1")
      expect((yield* verifier.verify(yield* sign(ec))).orgId).toBe("org_a")
      // a key the set does not hold, under a kid it does: the signature does not verify
      const impostor = { ...(yield* pair("rsa-1", "RS256")) }
      expect(yield* reason(verifier, yield* sign(impostor))).toBe("bad_signature")
      expect(yield* reason(verifier, yield* sign({ ...rsa, kid: "rsa-9" }))).toBe("unknown_key")
    }))

  it.live("refuses algorithm confusion: a public key as an HMAC secret, a key under another alg, and none", () =>
    Effect.gen(function*() {
      const rsa = yield* pair("rsa-1", "RS256")
      const ec = yield* pair("ec-1", "ES256")
      const hmacKey = { kid: "h1", secret: new TextEncoder().encode("hmac-secret-0123456789-abcdefghijklmno") }
      const jwksOnly = AuthJose.makeVerifier({ hmac: [], jwks: local(keySet(rsa, ec)) })
      const both = AuthJose.makeVerifier({ hmac: [hmacKey], jwks: local(keySet(rsa, ec)) })
      // the classic: HS256 signed with the RSA public key's PEM (what a naive verifier would use as the secret)
      const pem = yield* Effect.promise(() => exportSPKI(createPublicKey(rsa.privateKey)))
      const now = Math.floor(Date.now() / 1000)
      const confused = yield* Effect.promise(() =>
        new SignJWT(claims()).setProtectedHeader({ alg: "HS256", kid: "rsa-1" }).setSubject("user_1").setJti("j")
          .setIssuedAt(now).setExpirationTime(now + 600).sign(new TextEncoder().encode(pem))
      )
      expect(yield* reason(jwksOnly, confused)).toBe("algorithm_not_allowed")
      // with an HS256 keyring beside it, the kid names no HMAC key
      expect(yield* reason(both, confused)).toBe("unknown_key")
      // ES256 named by the RSA key's kid (and the other way round): the key is pinned to its own alg
      expect(yield* reason(jwksOnly, yield* sign({ ...ec, kid: "rsa-1" }))).toBe("unknown_key")
      expect(yield* reason(jwksOnly, yield* sign({ ...rsa, kid: "ec-1" }))).toBe("unknown_key")
      // alg none, and an algorithm of no configured keyring
      const body = Buffer.from(JSON.stringify({ sub: "user_1", ...claims() })).toString("base64url")
      const none = `${Buffer.from(JSON.stringify({ alg: "none", kid: "rsa-1" })).toString("base64url")}.${body}.`
      expect(yield* reason(jwksOnly, none)).toBe("algorithm_not_allowed")
      expect(yield* reason(both, none)).toBe("algorithm_not_allowed")
      const hsOnly = AuthJose.makeVerifier({ hmac: [hmacKey] })
      expect(yield* reason(hsOnly, yield* sign(rsa))).toBe("algorithm_not_allowed")
      // the HS256 keyring still works beside the JWKS one
      const signer = AuthJose.makeSigner(hmacKey)
      const hs = yield* signer.sign({ subject: "user_2", orgId: "org_a", scopes: ["x"], ttlSeconds: 60 })
      expect((yield* both.verify(hs)).subject).toBe("user_2")
    }))

  it.live("checks iss, aud and oa_claims_version when configured", () =>
    Effect.gen(function*() {
      const ec = yield* pair("ec-1", "ES256")
      const verifier = AuthJose.makeVerifier({ hmac: [], jwks: local(keySet(ec)) }, {
        issuer: "https://issuer.example",
        audience: "khala",
        claimsVersion: "2"
      })
      const good = { iss: "https://issuer.example", aud: ["khala", "other"], oa_claims_version: 2 }
      expect((yield* verifier.verify(yield* sign(ec, { payload: good }))).subject).toBe("user_1")
      expect(yield* reason(verifier, yield* sign(ec, { payload: { ...good, iss: "https://evil.example" } })))
        .toBe("bad_claim")
      expect(yield* reason(verifier, yield* sign(ec, { payload: { ...good, aud: "another" } }))).toBe("bad_claim")
      expect(yield* reason(verifier, yield* sign(ec, { payload: { ...good, oa_claims_version: 1 } }))).toBe(
        "bad_claim"
      )
    }))

  it.scopedLive("a JWKS URL: rotation to a new kid is picked up, previous keys verify while listed", () =>
    Effect.gen(function*() {
      const old = yield* pair("k-2030-01", "RS256")
      const next = yield* pair("k-2030-02", "ES256")
      const endpoint = yield* jwksServer(keySet(old))
      const verifier = AuthJose.makeVerifier({
        hmac: [],
        jwks: { _tag: "Remote", url: endpoint.url, cooldown: Duration.millis(200), maxAge: Duration.minutes(10) }
      })
      expect((yield* verifier.verify(yield* sign(old))).subject).toBe("user_1")
      expect(endpoint.state.fetches).toBe(1)
      // cached: no fetch per token
      yield* verifier.verify(yield* sign(old))
      expect(endpoint.state.fetches).toBe(1)
      // the issuer publishes the new key beside the old one and signs with it
      endpoint.state.keys = keySet(next, old)
      yield* Effect.sleep("250 millis")
      expect((yield* verifier.verify(yield* sign(next))).subject).toBe("user_1")
      expect(endpoint.state.fetches).toBe(2)
      expect((yield* verifier.verify(yield* sign(old))).subject).toBe("user_1")
      // the old key leaves the set: once the set is fetched again, its tokens are refused
      endpoint.state.keys = keySet(next)
      yield* Effect.sleep("250 millis")
      expect(yield* reason(verifier, yield* sign({ ...old, kid: "k-unknown" }))).toBe("unknown_key")
      expect(yield* reason(verifier, yield* sign(old))).toBe("unknown_key")
    }))

  it.scopedLive("a JWKS URL: refetches for unknown kids are rate limited by the cooldown", () =>
    Effect.gen(function*() {
      const known = yield* pair("known", "ES256")
      const endpoint = yield* jwksServer(keySet(known))
      const verifier = AuthJose.makeVerifier({
        hmac: [],
        jwks: { _tag: "Remote", url: endpoint.url, cooldown: Duration.seconds(30), maxAge: Duration.minutes(10) }
      })
      yield* verifier.verify(yield* sign(known))
      expect(endpoint.state.fetches).toBe(1)
      const forged = yield* Effect.forEach(
        Array.from({ length: 20 }, (_, i) => ({ ...known, kid: `forged-${i}` })),
        (key) => sign(key)
      )
      const reasons = yield* Effect.forEach(forged, (token) => reason(verifier, token), { concurrency: 5 })
      expect(new Set(reasons)).toEqual(new Set(["unknown_key"]))
      // within the cooldown, twenty unknown kids cost no fetch at all
      expect(endpoint.state.fetches).toBe(1)
    }))

  it.live("a JWKS URL that does not answer refuses tokens as unknown_key, without a crash", () =>
    Effect.gen(function*() {
      const ec = yield* pair("ec-1", "ES256")
      const verifier = AuthJose.makeVerifier({
        hmac: [],
        jwks: {
          _tag: "Remote",
          url: new URL("http://127.0.0.1:9/jwks.json"),
          cooldown: Duration.seconds(1),
          maxAge: Duration.minutes(1)
        }
      })
      const error = yield* Effect.flip(verifier.verify(yield* sign(ec)))
      expect(error.reason).toBe("unknown_key")
      expect(error.message).toContain("could not fetch")
    }))
})

describe("JWKS key set validation", () => {
  it.effect("refuses private keys, repeated kids, unusable key types and mismatched algs, by kid", () =>
    Effect.gen(function*() {
      const rsa = yield* pair("rsa-1", "RS256")
      const privateJwk = { ...(yield* Effect.promise(() => exportJWK(rsa.privateKey))), kid: "p" }
      const check = (keys: unknown) => Either.flip(JwksKeys.validateKeySet(keys))
      expect(check({ keys: [privateJwk] })).toEqual(Either.right(`key "p" is a private key: publish only public keys`))
      expect(check({ keys: [rsa.publicJwk, rsa.publicJwk] })).toEqual(Either.right(`kid "rsa-1" is listed twice`))
      expect(check({ keys: [{ kty: "oct", k: "c2VjcmV0", kid: "o" }] })).toEqual(
        Either.right(`key "o" is oct: only RSA (RS256) and EC P-256 (ES256) keys are accepted`)
      )
      expect(check({ keys: [{ ...rsa.publicJwk, alg: "HS256" }] })).toEqual(
        Either.right(`key "rsa-1" has alg HS256, which its RSA key cannot be used for`)
      )
      expect(check({ keys: [{ ...rsa.publicJwk, kid: undefined }] })).toEqual(Either.right("key 1 has no kid"))
      expect(check({ keys: [] })).toEqual(Either.right("the key set has no keys"))
      expect(check([])).toEqual(Either.right(`expected a JWKS: {"keys": [...]}`))
      // a valid key comes back pinned to its alg
      const valid = Either.getOrThrow(JwksKeys.validateKeySet(keySet(rsa)))
      expect(valid.keys[0]?.alg).toBe("RS256")
    }))
})

describe("JWKS configuration", () => {
  const withEnv = (env: Record<string, string>) =>
    Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries({ NODE_ENV: "production", ...env }))))

  const build = (env: Record<string, string>) =>
    Layer.build(AuthJose.layerConfig).pipe(Effect.map((context) => context), withEnv(env), Effect.scoped)

  it.live("KHALA_AUTH_JWKS_FILE verifies tokens without any HS256 key, and a bad file stops the start in one line", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const ec = yield* pair("ec-1", "ES256")
      const file = join(dir, "jwks.json")
      writeFileSync(file, JSON.stringify(keySet(ec)))
      const context = yield* Layer.build(AuthJose.layerConfig).pipe(
        withEnv({ KHALA_AUTH_JWKS_FILE: file, DATABASE_URL: "postgres://db/khala" })
      )
      const verifier = (yield* Effect.provide(TokenVerifier, context)) as TokenVerifier["Type"]
      expect((yield* verifier.verify(yield* sign(ec))).subject).toBe("user_1")

      const failure = (env: Record<string, string>) =>
        Effect.map(Effect.flip(build({ DATABASE_URL: "postgres://db/khala", ...env })), String)
      writeFileSync(join(dir, "private.json"), JSON.stringify({ keys: [{ ...ec.publicJwk, d: "x" }] }))
      const privateError = yield* failure({ KHALA_AUTH_JWKS_FILE: join(dir, "private.json") })
      expect(privateError).toContain(`key "ec-1" is a private key`)
      expect(privateError).not.toContain("\n")
      expect(yield* failure({ KHALA_AUTH_JWKS_FILE: join(dir, "missing.json") })).toContain("missing.json")
      writeFileSync(join(dir, "garbage.json"), "{nope")
      expect(yield* failure({ KHALA_AUTH_JWKS_FILE: join(dir, "garbage.json") })).toContain("not JSON")
      expect(yield* failure({ KHALA_AUTH_JWKS_URL: "ftp://keys.example/jwks" })).toContain("http(s) URL")
      expect(yield* failure({ KHALA_AUTH_JWKS_FILE: file, KHALA_AUTH_JWKS_URL: "https://keys.example/jwks" }))
        .toContain("not both")
      expect(yield* failure({ KHALA_AUTH_JWKS_URL: "https://k.example/j", KHALA_AUTH_JWKS_COOLDOWN: "0 millis" }))
        .toContain("KHALA_AUTH_JWKS_COOLDOWN")
    }).pipe(Effect.scoped))
})
