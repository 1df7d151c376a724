import { describe, expect, it } from "@effect/vitest"
import { ConfigProvider, Effect, Logger, TestClock } from "effect"
import type { JWTHeaderParameters } from "jose"
import { decodeProtectedHeader, SignJWT } from "jose"
import { createHmac } from "node:crypto"
import { existsSync, readFileSync, statSync } from "node:fs"
import { join } from "node:path"
import * as AuthJose from "../../src/auth/AuthJose.js"
import { TokenSigner, TokenVerifier } from "../../src/services/TokenVerifier.js"
import { tempDir } from "../support/Processes.js"

const encoder = new TextEncoder()
const key = (kid: string, secret: string): AuthJose.HmacKey => ({ kid, secret: encoder.encode(secret) })
const k1 = key("k1", "first-secret-0123456789-abcdefghijklmnop")
const k2 = key("k2", "second-secret-0123456789-abcdefghijklmno")
const stranger = key("k9", "nobody-knows-this-0123456789-abcdefghijk")
const auth = AuthJose.make([k1, k2])

// the verifier reads the Effect clock: every test that signs by hand first sets the TestClock to `now`
const now = Date.UTC(2030, 0, 1) / 1000
const atNow = TestClock.setTime(now * 1000)

const claims = (overrides: Record<string, unknown> = {}): Record<string, unknown> => ({
  sub: "user_1",
  oa_org_id: "org_a",
  oa_sync_scopes: ["runtime.run_summaries", "runtime.codex_worker_events"],
  jti: "jti_1",
  iat: now,
  exp: now + 3600,
  ...overrides
})

const without = (claim: string) => Object.fromEntries(Object.entries(claims()).filter(([name]) => name !== claim))

const craft = (
  payload: Record<string, unknown>,
  header: JWTHeaderParameters = { alg: "HS256", kid: "k1" },
  secret: Uint8Array = k1.secret
) => Effect.promise(() => new SignJWT(payload).setProtectedHeader(header).sign(secret))

const base64url = (value: unknown) => Buffer.from(JSON.stringify(value)).toString("base64url")
const hmac = (input: string) => `${input}.${createHmac("sha256", k1.secret).update(input).digest("base64url")}`

const refusal = (token: string, verifier: TokenVerifier["Type"] = auth) => Effect.flip(verifier.verify(token))

describe("AuthJose verifier", () => {
  it.effect("a valid token gives its principal", () =>
    Effect.gen(function*() {
      yield* atNow
      const principal = yield* auth.verify(yield* craft(claims()))
      expect(principal).toEqual({
        subject: "user_1",
        orgId: "org_a",
        scopes: ["runtime.run_summaries", "runtime.codex_worker_events"],
        tokenId: "jti_1",
        expiresAt: new Date((now + 3600) * 1000),
        // the socket's deadline: exp plus the 30 s the verifier tolerates, so that acceptance and deadline agree
        validUntil: new Date((now + 3630) * 1000)
      })
    }))

  it.effect("scopes as a comma-separated string are trimmed, without empties or repeats", () =>
    Effect.gen(function*() {
      yield* atNow
      const token = yield* craft(claims({ oa_sync_scopes: " a, b ,,a, " }))
      expect((yield* auth.verify(token)).scopes).toEqual(["a", "b"])
      expect((yield* auth.verify(yield* craft(claims({ oa_sync_scopes: [] })))).scopes).toEqual([])
    }))

  it.effect("what the signer signs, the verifier accepts; the first key signs", () =>
    Effect.gen(function*() {
      yield* atNow
      const token = yield* auth.sign({ subject: "s", orgId: "o", scopes: ["a", "b"], ttlSeconds: 900 })
      expect(decodeProtectedHeader(token)).toEqual({ alg: "HS256", typ: "JWT", kid: "k1" })
      const principal = yield* auth.verify(token)
      expect(principal).toMatchObject({ subject: "s", orgId: "o", scopes: ["a", "b"] })
      expect(principal.expiresAt.getTime()).toBe((now + 900) * 1000)
      const other = yield* auth.sign({ subject: "s", orgId: "o", scopes: [], ttlSeconds: 900 })
      expect((yield* auth.verify(other)).tokenId).not.toBe(principal.tokenId)
    }))

  describe("key rotation", () => {
    it.effect("a token of the second key verifies", () =>
      Effect.gen(function*() {
        yield* atNow
        const token = yield* craft(claims(), { alg: "HS256", kid: "k2" }, k2.secret)
        expect((yield* auth.verify(token)).subject).toBe("user_1")
        // signed by the previous key of a rotated keyring
        expect(
          (yield* AuthJose.make([k2]).verify(
            yield* AuthJose.make([k1, k2]).sign({
              subject: "s",
              orgId: "o",
              scopes: [],
              ttlSeconds: 60
            })
          ).pipe(Effect.flip)).reason
        ).toBe("unknown_key")
      }))

    it.effect("an unknown kid is unknown_key; a known kid with another key's signature is bad_signature", () =>
      Effect.gen(function*() {
        yield* atNow
        expect((yield* refusal(yield* craft(claims(), { alg: "HS256", kid: "k9" }, stranger.secret))).reason)
          .toBe("unknown_key")
        expect((yield* refusal(yield* craft(claims(), { alg: "HS256", kid: "k1" }, k2.secret))).reason)
          .toBe("bad_signature")
      }))

    it.effect("a token without kid is tried against every key", () =>
      Effect.gen(function*() {
        yield* atNow
        expect((yield* auth.verify(yield* craft(claims(), { alg: "HS256" }, k1.secret))).subject).toBe("user_1")
        expect((yield* auth.verify(yield* craft(claims(), { alg: "HS256" }, k2.secret))).subject).toBe("user_1")
        expect((yield* refusal(yield* craft(claims(), { alg: "HS256" }, stranger.secret))).reason)
          .toBe("bad_signature")
        // a claim failure under the first key is final, not hidden by a signature failure under the next
        const expired = yield* craft(claims({ exp: now - 120 }), { alg: "HS256" }, k1.secret)
        expect((yield* refusal(expired)).reason).toBe("expired")
      }))
  })

  describe("time, with 30 s of clock skew", () => {
    it.effect("expired beyond 30 s is expired; within 25 s still valid", () =>
      Effect.gen(function*() {
        yield* atNow
        expect((yield* refusal(yield* craft(claims({ exp: now - 31 })))).reason).toBe("expired")
        expect((yield* auth.verify(yield* craft(claims({ exp: now - 25 })))).subject).toBe("user_1")
      }))

    it.effect("a signed token expires as the clock moves", () =>
      Effect.gen(function*() {
        yield* atNow
        const token = yield* auth.sign({ subject: "s", orgId: "o", scopes: [], ttlSeconds: 60 })
        yield* TestClock.adjust("85 seconds")
        expect((yield* auth.verify(token)).subject).toBe("s")
        yield* TestClock.adjust("10 seconds")
        expect((yield* refusal(token)).reason).toBe("expired")
      }))

    it.effect("nbf in the future is not_yet_valid; within the skew it is accepted", () =>
      Effect.gen(function*() {
        yield* atNow
        expect((yield* refusal(yield* craft(claims({ nbf: now + 60 })))).reason).toBe("not_yet_valid")
        expect((yield* auth.verify(yield* craft(claims({ nbf: now + 20 })))).subject).toBe("user_1")
      }))
  })

  describe("algorithms", () => {
    it.effect("alg none is refused, with or without a kid", () =>
      Effect.gen(function*() {
        yield* atNow
        for (const header of [{ alg: "none" }, { alg: "none", kid: "k1" }, { alg: "none", kid: "k9" }]) {
          const token = `${base64url(header)}.${base64url(claims())}.`
          expect(yield* refusal(token)).toMatchObject({ _tag: "Unauthorized", reason: "algorithm_not_allowed" })
        }
      }))

    it.effect("HS512 is not allowed", () =>
      Effect.gen(function*() {
        yield* atNow
        const secret = encoder.encode("x".repeat(64))
        const token = yield* craft(claims(), { alg: "HS512", kid: "k1" }, secret)
        expect((yield* refusal(token)).reason).toBe("algorithm_not_allowed")
      }))
  })

  describe("claims", () => {
    it.effect("each required claim missing is missing_claim", () =>
      Effect.gen(function*() {
        yield* atNow
        for (const claim of ["sub", "exp", "iat", "jti", "oa_org_id", "oa_sync_scopes"]) {
          const error = yield* refusal(yield* craft(without(claim)))
          expect({ claim, reason: error.reason }).toEqual({ claim, reason: "missing_claim" })
          expect(error.message).toContain(claim)
        }
      }))

    it.effect("claims of the wrong type are bad_claim", () =>
      Effect.gen(function*() {
        yield* atNow
        const wrong = [
          { oa_sync_scopes: 5 },
          { oa_sync_scopes: ["a", 5] },
          { oa_org_id: null },
          { oa_org_id: "" },
          { sub: 42 },
          { jti: "" },
          { exp: "tomorrow" },
          { iat: "today" },
          { nbf: "soon" },
          // beyond what a Date holds: no deadline could be kept for it
          { exp: 1e13 }
        ]
        for (const overrides of wrong) {
          const error = yield* refusal(yield* craft(claims(overrides)))
          expect({ overrides, reason: error.reason }).toEqual({ overrides, reason: "bad_claim" })
          expect(error.message).toContain(Object.keys(overrides)[0])
        }
      }))

    it.effect("iss, aud and oa_claims_version are checked when configured", () =>
      Effect.gen(function*() {
        yield* atNow
        const options = { issuer: "https://auth.example", audience: "khala", claimsVersion: "1" }
        const good = { iss: "https://auth.example", aud: ["other", "khala"], oa_claims_version: "1" }
        const verifier = AuthJose.make([k1, k2], options)
        expect((yield* verifier.verify(yield* craft(claims(good)))).subject).toBe("user_1")
        // a numeric claims version matches its decimal form
        expect((yield* verifier.verify(yield* craft(claims({ ...good, oa_claims_version: 1 })))).subject)
          .toBe("user_1")
        const reasons = yield* Effect.forEach([
          { iss: "https://evil.example" },
          { aud: "someone-else" },
          { oa_claims_version: "2" },
          { iss: undefined },
          { aud: undefined },
          { oa_claims_version: undefined }
        ], (overrides) =>
          Effect.flatMap(craft(claims({ ...good, ...overrides })), (token) =>
            Effect.map(refusal(token, verifier), (error) =>
              error.reason)))
        expect(reasons).toEqual([
          "bad_claim",
          "bad_claim",
          "bad_claim",
          "missing_claim",
          "missing_claim",
          "missing_claim"
        ])
        // unconfigured, they are not looked at
        expect((yield* auth.verify(yield* craft(claims({ iss: "anyone", oa_claims_version: 7 })))).subject)
          .toBe("user_1")
        // the signer of a configured keyring sets them
        const signed = yield* verifier.sign({ subject: "s", orgId: "o", scopes: [], ttlSeconds: 60 })
        expect((yield* verifier.verify(signed)).subject).toBe("s")
      }))
  })

  it.effect("garbage is malformed, an empty token is missing_token, and no message echoes the token", () =>
    Effect.gen(function*() {
      yield* atNow
      const token = yield* craft(claims())
      const [header, payload] = token.split(".")
      const cases = [
        ["not a token", "malformed"],
        ["a.b.c", "malformed"],
        [`${header}.${payload}`, "malformed"],
        [`${header}.${payload}.!!!`, "malformed"],
        // signed, but the claims are not a JSON object
        [hmac(`${header}.${base64url("just a string")}`), "malformed"],
        ["", "missing_token"],
        ["   ", "missing_token"]
      ] as const
      for (const [input, reason] of cases) {
        const error = yield* refusal(input)
        expect({ input, reason: error.reason }).toEqual({ input, reason })
        if (input.trim() !== "") expect(error.message).not.toContain(input)
      }
      const forged = yield* craft(claims(), { alg: "HS256", kid: "k1" }, stranger.secret)
      const error = yield* refusal(forged)
      expect(error.reason).toBe("bad_signature")
      expect(error.message).not.toContain(forged)
    }))
})

const withEnv = (env: Record<string, string>) =>
  Effect.withConfigProvider(ConfigProvider.fromMap(new Map(Object.entries(env))))

const services = Effect.all([TokenVerifier, TokenSigner])

/** Builds `layerConfig` in the given environment (and nothing from the real one). */
const fromConfig = (env: Record<string, string>) => Effect.provide(services, AuthJose.layerConfig).pipe(withEnv(env))

const keys = "k1:first-secret-0123456789-abcdefghijklmnop,k2:second-secret-0123456789-abcdefghijklmno"

describe("AuthJose.layerConfig", () => {
  it.effect("KHALA_AUTH_HS256_KEYS: every key verifies, the first signs", () =>
    Effect.gen(function*() {
      yield* atNow
      const [verifier, signer] = yield* fromConfig({ KHALA_AUTH_HS256_KEYS: ` ${keys} ` })
      const token = yield* signer.sign({ subject: "s", orgId: "o", scopes: ["a"], ttlSeconds: 60 })
      expect(decodeProtectedHeader(token).kid).toBe("k1")
      expect((yield* auth.verify(token)).subject).toBe("s")
      expect((yield* verifier.verify(yield* craft(claims(), { alg: "HS256", kid: "k2" }, k2.secret))).subject)
        .toBe("user_1")
    }))

  it.effect("a secret may contain colons", () =>
    Effect.gen(function*() {
      yield* atNow
      const [verifier] = yield* fromConfig({ KHALA_AUTH_HS256_KEYS: "k1:a:b:c" })
      const token = yield* craft(claims(), { alg: "HS256", kid: "k1" }, encoder.encode("a:b:c"))
      expect((yield* verifier.verify(token)).subject).toBe("user_1")
    }))

  it.effect("issuer, audience and claims version come from the environment", () =>
    Effect.gen(function*() {
      yield* atNow
      const [verifier] = yield* fromConfig({
        KHALA_AUTH_HS256_KEYS: keys,
        KHALA_AUTH_ISSUER: "iss_1",
        KHALA_AUTH_AUDIENCE: "aud_1",
        KHALA_AUTH_CLAIMS_VERSION: "3"
      })
      const good = claims({ iss: "iss_1", aud: "aud_1", oa_claims_version: "3" })
      expect((yield* verifier.verify(yield* craft(good))).subject).toBe("user_1")
      const error = yield* Effect.flip(verifier.verify(yield* craft({ ...good, iss: "iss_2" })))
      expect(error.reason).toBe("bad_claim")
    }))

  it.effect("a malformed keyring is a ConfigError that names the variable and the fault, not the secret", () =>
    Effect.gen(function*() {
      const cases = [
        ["k1:first-secret,no-colon-secret", "entry 2 has no \":\""],
        ["k1:first-secret,:orphan-secret", "entry 2 has an empty kid"],
        ["k1:first-secret,k2:", "key \"k2\" has an empty secret"],
        ["k1:first-secret,k1:again-secret", "kid \"k1\" is listed twice"],
        ["k1:first-secret,,k2:second-secret", "entry 2 is empty"]
      ] as const
      for (const [value, fault] of cases) {
        const error = yield* Effect.flip(fromConfig({ KHALA_AUTH_HS256_KEYS: value }))
        expect(error).toMatchObject({ _tag: "ConfigError", _op: "InvalidData" })
        const message = String(error)
        expect(message).toContain("KHALA_AUTH_HS256_KEYS")
        expect(message).toContain(fault)
        for (const secret of ["first-secret", "no-colon-secret", "orphan-secret", "again-secret"]) {
          expect(message).not.toContain(secret)
        }
      }
    }))

  it.scoped("without keys on the embedded database: a dev key file, created once (0600 in a 0700 directory) and reused", () =>
    Effect.gen(function*() {
      yield* atNow
      const dataDir = join(yield* tempDir, "data")
      const file = join(dataDir, "dev-auth-key")
      const env = { KHALA_DATA_DIR: dataDir, NODE_ENV: "development" }
      const logs: Array<string> = []
      const capture = Logger.replace(
        Logger.defaultLogger,
        Logger.make(({ logLevel, message }) => logs.push(`${logLevel.label} ${String(message)}`))
      )

      const [, signer] = yield* fromConfig(env).pipe(Effect.provide(capture))
      expect(statSync(file).mode & 0o777).toBe(0o600)
      expect(statSync(dataDir).mode & 0o777).toBe(0o700)
      const text = readFileSync(file, "utf8")
      expect(text.trim()).toMatch(/^[A-Za-z0-9_-]{43}$/)
      expect(logs).toHaveLength(1)
      expect(logs[0]).toContain("WARN")
      expect(logs[0]).toContain(file)
      expect(logs[0]).toContain("development key")

      const token = yield* signer.sign({ subject: "s", orgId: "o", scopes: ["a"], ttlSeconds: 60 })
      expect(decodeProtectedHeader(token).kid).toBe("dev")
      // a second process (khala serve after khala token) finds the same key
      const [verifier] = yield* fromConfig(env).pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))
      expect(readFileSync(file, "utf8")).toBe(text)
      expect((yield* verifier.verify(token)).subject).toBe("s")
      // the file's text is the secret: the same key can be given as KHALA_AUTH_HS256_KEYS=dev:<text>
      expect((yield* AuthJose.make([key("dev", text.trim())]).verify(token)).subject).toBe("s")
    }))

  it.scoped("several layers built at once agree on one dev key", () =>
    Effect.gen(function*() {
      yield* atNow
      const env = { KHALA_DATA_DIR: yield* tempDir, NODE_ENV: "test" }
      const built = yield* Effect.all(Array.from({ length: 8 }, () => fromConfig(env)), { concurrency: "unbounded" })
        .pipe(Effect.provide(Logger.remove(Logger.defaultLogger)))
      const token = yield* built[0]![1].sign({ subject: "s", orgId: "o", scopes: [], ttlSeconds: 60 })
      for (const [verifier] of built) expect((yield* verifier.verify(token)).subject).toBe("s")
    }))

  it.scoped("in production, no keys is a ConfigError naming KHALA_AUTH_HS256_KEYS, and no dev key is made", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir
      for (const value of [undefined, "", "  "]) {
        const env: Record<string, string> = { KHALA_DATA_DIR: dataDir, NODE_ENV: "production" }
        if (value !== undefined) env.KHALA_AUTH_HS256_KEYS = value
        const error = yield* Effect.flip(fromConfig(env))
        expect(error).toMatchObject({ _tag: "ConfigError", _op: "MissingData" })
        expect(String(error)).toContain("KHALA_AUTH_HS256_KEYS")
      }
      expect(existsSync(join(dataDir, "dev-auth-key"))).toBe(false)
      const [verifier] = yield* fromConfig({ KHALA_AUTH_HS256_KEYS: keys, NODE_ENV: "production" })
      yield* atNow
      expect((yield* verifier.verify(yield* craft(claims()))).subject).toBe("user_1")
    }))

  it.scoped("with DATABASE_URL and no keys, starting is a ConfigError naming both settings, and no dev key is made", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir
      const error = yield* Effect.flip(
        fromConfig({ KHALA_DATA_DIR: dataDir, NODE_ENV: "development", DATABASE_URL: "postgres://db.example/app" })
      )
      expect(error).toMatchObject({ _tag: "ConfigError" })
      expect(String(error)).toContain("KHALA_AUTH_HS256_KEYS")
      expect(String(error)).toContain("KHALA_AUTH_DEV_KEY")
      expect(existsSync(join(dataDir, "dev-auth-key"))).toBe(false)
    }))

  it.scoped("KHALA_AUTH_DEV_KEY=true uses the development key with DATABASE_URL too; =false refuses it everywhere", () =>
    Effect.gen(function*() {
      yield* atNow
      const dataDir = yield* tempDir
      const server = { KHALA_DATA_DIR: dataDir, DATABASE_URL: "postgres://db.example/app" }
      const [verifier, signer] = yield* fromConfig({ ...server, KHALA_AUTH_DEV_KEY: "true" }).pipe(
        Effect.provide(Logger.remove(Logger.defaultLogger))
      )
      const token = yield* signer.sign({ subject: "s", orgId: "o", scopes: [], ttlSeconds: 60 })
      expect(decodeProtectedHeader(token).kid).toBe("dev")
      expect((yield* verifier.verify(token)).subject).toBe("s")
      expect(existsSync(join(dataDir, "dev-auth-key"))).toBe(true)
      // explicitly off: even the embedded database (no DATABASE_URL) gets no development key
      const embedded = yield* tempDir
      const refused = yield* Effect.flip(fromConfig({ KHALA_DATA_DIR: embedded, KHALA_AUTH_DEV_KEY: "false" }))
      expect(String(refused)).toContain("KHALA_AUTH_HS256_KEYS")
      expect(existsSync(join(embedded, "dev-auth-key"))).toBe(false)
    }))

  it.effect("the layer built from fixed keys provides both services", () =>
    Effect.gen(function*() {
      yield* atNow
      const [verifier, signer] = yield* Effect.provide(services, AuthJose.layer([k2, k1]))
      const token = yield* signer.sign({ subject: "s", orgId: "o", scopes: [], ttlSeconds: 60 })
      expect(decodeProtectedHeader(token).kid).toBe("k2")
      expect((yield* verifier.verify(token)).subject).toBe("s")
    }))
})
