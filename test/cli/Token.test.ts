import { describe, expect, it } from "@effect/vitest"
import { Effect, Either } from "effect"
import { decodeProtectedHeader, exportJWK, exportPKCS8, generateKeyPair } from "jose"
import { readdirSync, readFileSync, statSync, writeFileSync } from "node:fs"
import { join } from "node:path"
import * as AuthJose from "../../src/auth/AuthJose.js"
import * as JwksKeys from "../../src/auth/JwksKeys.js"
import { runCli, tempDir } from "../support/Processes.js"

const encoder = new TextEncoder()
const first = "first-secret-0123456789-abcdefghijklmnop"
const second = "second-secret-0123456789-abcdefghijklmno"
const scopes = "runtime.run_summaries, runtime.codex_worker_events"
const args = ["token", "--sub", "user_1", "--org", "org_a", "--scopes", scopes]

// the child's environment is this one's plus these: pin what would otherwise leak in from the outside
const noKeys = { KHALA_AUTH_HS256_KEYS: "", NODE_ENV: "development" }

describe("khala token", () => {
  it.live("prints a token signed with the first configured key, with the given claims and lifetime", () =>
    Effect.gen(function*() {
      const before = Date.now()
      const result = yield* runCli([...args, "--ttl", "15m"], {
        ...noKeys,
        KHALA_AUTH_HS256_KEYS: `k1:${first},k2:${second}`
      })
      expect(result.code).toBe(0)
      const token = result.stdout.trim()
      expect(result.stdout).toBe(`${token}\n`)
      expect(decodeProtectedHeader(token).kid).toBe("k1")
      const principal = yield* AuthJose.make([{ kid: "k1", secret: encoder.encode(first) }]).verify(token)
      expect(principal).toMatchObject({
        subject: "user_1",
        orgId: "org_a",
        scopes: ["runtime.run_summaries", "runtime.codex_worker_events"]
      })
      // signed at some instant of the run, in whole seconds
      const after = Date.now()
      expect(principal.expiresAt.getTime()).toBeGreaterThanOrEqual(before + 15 * 60_000 - 1000)
      expect(principal.expiresAt.getTime()).toBeLessThanOrEqual(after + 15 * 60_000)
      expect(result.stdout + result.stderr).not.toContain(first)
    }))

  it.scoped("without keys, signs with the development key in KHALA_DATA_DIR, created once and reused", () =>
    Effect.gen(function*() {
      const dataDir = join(yield* tempDir, "data")
      const env = { ...noKeys, KHALA_DATA_DIR: dataDir }
      const result = yield* runCli(args, env)
      expect(result.code).toBe(0)
      expect(result.stderr).toContain("development key")
      const file = join(dataDir, "dev-auth-key")
      expect(statSync(file).mode & 0o777).toBe(0o600)
      const text = readFileSync(file, "utf8")
      const devVerifier = AuthJose.make([{ kid: "dev", secret: encoder.encode(text.trim()) }])
      const token = result.stdout.trim()
      expect(decodeProtectedHeader(token).kid).toBe("dev")
      const principal = yield* devVerifier.verify(token)
      expect(principal.subject).toBe("user_1")
      const ttl = principal.expiresAt.getTime() - Date.now()
      expect(ttl).toBeGreaterThan(3500_000)
      expect(ttl).toBeLessThanOrEqual(3600_000)

      const again = yield* runCli(args, env)
      expect(again.code).toBe(0)
      expect(readFileSync(file, "utf8")).toBe(text)
      expect(readdirSync(dataDir)).toEqual(["dev-auth-key"])
      expect((yield* devVerifier.verify(again.stdout.trim())).subject).toBe("user_1")
    }))

  it.scoped("a bad --ttl, or an empty --sub, fails with a message and creates nothing", () =>
    Effect.gen(function*() {
      const dataDir = yield* tempDir
      const env = { ...noKeys, KHALA_DATA_DIR: dataDir }
      const ttls = ["soon", "0s", "1.5h"]
      const results = yield* Effect.forEach(ttls, (ttl) => runCli([...args, "--ttl", ttl], env), {
        concurrency: "unbounded"
      })
      for (const [index, result] of results.entries()) {
        const ttl = ttls[index]
        expect({ ttl, code: result.code }).toEqual({ ttl, code: 1 })
        expect(result.stderr).toContain(`--ttl "${ttl}" is not a lifetime`)
        expect(result.stdout).toBe("")
      }
      const empty = yield* runCli(["token", "--sub", " ", "--org", "o", "--scopes", "a"], env)
      expect(empty.code).toBe(1)
      expect(empty.stderr).toContain("--sub must not be empty")
      expect(readdirSync(dataDir)).toEqual([])
    }))

  it.live("accepts 30s, 2d and Effect's long form", () =>
    Effect.forEach(
      [["30s", 30], ["2d", 172_800], ["90 minutes", 5400]] as const,
      ([ttl, seconds]) =>
        Effect.gen(function*() {
          const result = yield* runCli([...args, "--ttl", ttl], { ...noKeys, KHALA_AUTH_HS256_KEYS: `k1:${first}` })
          expect(result.code).toBe(0)
          const payload = JSON.parse(Buffer.from(result.stdout.trim().split(".")[1] ?? "", "base64url").toString())
          expect(payload.exp - payload.iat).toBe(seconds)
        }),
      { concurrency: "unbounded" }
    ))

  it.live("a malformed keyring, or production without keys, is refused naming KHALA_AUTH_HS256_KEYS", () =>
    Effect.gen(function*() {
      const malformed = yield* runCli(args, { ...noKeys, KHALA_AUTH_HS256_KEYS: `k1${first}` })
      expect(malformed.code).toBe(1)
      expect(malformed.stderr).toContain("KHALA_AUTH_HS256_KEYS")
      expect(malformed.stderr).toContain("no \":\"")
      expect(malformed.stderr).not.toContain(first)
      const production = yield* runCli(args, { ...noKeys, NODE_ENV: "production" })
      expect(production.code).toBe(1)
      expect(production.stderr).toContain("KHALA_AUTH_HS256_KEYS")
      expect(production.stdout).toBe("")
    }))

  it.scoped("--private-key signs RS256 from a PKCS8 PEM (with --kid) and ES256 from a private JWK (with its kid)", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      const rsa = yield* Effect.promise(() => generateKeyPair("RS256", { extractable: true }))
      const ec = yield* Effect.promise(() => generateKeyPair("ES256", { extractable: true }))
      const pemFile = join(dir, "rsa.pem")
      writeFileSync(pemFile, yield* Effect.promise(() => exportPKCS8(rsa.privateKey)))
      const jwkFile = join(dir, "ec.jwk")
      writeFileSync(
        jwkFile,
        JSON.stringify({ ...(yield* Effect.promise(() => exportJWK(ec.privateKey))), kid: "ec-1" })
      )
      const jwks = {
        keys: [
          { ...(yield* Effect.promise(() => exportJWK(rsa.publicKey))), kid: "rsa-1" },
          { ...(yield* Effect.promise(() => exportJWK(ec.publicKey))), kid: "ec-1" }
        ]
      }
      const verifier = AuthJose.makeVerifier(
        { hmac: [], jwks: { _tag: "Local", keys: Either.getOrThrow(JwksKeys.validateKeySet(jwks)) } },
        { issuer: "https://issuer.example" }
      )
      // the server's configuration (a JWKS keyring, an issuer) applies to what is signed
      const env = {
        ...noKeys,
        KHALA_AUTH_JWKS_URL: "https://keys.example/jwks",
        KHALA_AUTH_ISSUER: "https://issuer.example"
      }
      const [pem, jwk, noKid, noKey] = yield* Effect.all([
        runCli([...args, "--private-key", pemFile, "--kid", "rsa-1"], env),
        runCli([...args, "--private-key", jwkFile], env),
        runCli([...args, "--private-key", pemFile], env),
        runCli(args, env)
      ], { concurrency: "unbounded" })
      expect(pem.code).toBe(0)
      expect(decodeProtectedHeader(pem.stdout.trim())).toMatchObject({ alg: "RS256", kid: "rsa-1" })
      expect((yield* verifier.verify(pem.stdout.trim())).subject).toBe("user_1")
      expect(jwk.code).toBe(0)
      expect(decodeProtectedHeader(jwk.stdout.trim())).toMatchObject({ alg: "ES256", kid: "ec-1" })
      expect((yield* verifier.verify(jwk.stdout.trim())).orgId).toBe("org_a")
      expect(noKid.code).toBe(1)
      expect(noKid.stderr).toContain("--kid")
      expect(noKey.code).toBe(1)
      expect(noKey.stderr).toContain("--private-key")
      expect(noKey.stdout).toBe("")
    }))

  it.live("--help", () =>
    Effect.map(runCli(["token", "--help"]), (result) => {
      expect(result.code).toBe(0)
      expect(result.stdout).toContain("token")
      expect(result.stdout).toContain("--ttl")
      expect(result.stdout).toContain("--scopes")
    }))
})
