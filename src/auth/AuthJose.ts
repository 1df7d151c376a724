import {
  Array as Arr,
  Clock,
  Config,
  ConfigError,
  Duration,
  Effect,
  Either,
  Layer,
  Option,
  ParseResult,
  Redacted,
  Schema
} from "effect"
import type { CryptoKey as JoseCryptoKey, JWTHeaderParameters, JWTPayload, JWTVerifyOptions } from "jose"
import { decodeProtectedHeader, errors, jwtVerify, SignJWT } from "jose"
import type { KeyObject } from "node:crypto"
import { randomBytes, randomUUID } from "node:crypto"
import { existsSync, linkSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs"
import { join, resolve } from "node:path"
import { durationWithin } from "../services/Settings.js"
import type { Principal } from "../services/TokenVerifier.js"
import { TokenSigner, TokenVerifier, Unauthorized } from "../services/TokenVerifier.js"
import type { JwksSource, SigningKey } from "./JwksKeys.js"
import { asymmetricAlgorithms, keyLookup, KeysUnavailable, validateKeySet } from "./JwksKeys.js"
import * as VerifiedTokens from "./VerifiedTokens.js"

/** One HS256 key of the keyring: tokens name it in their `kid` header. */
export interface HmacKey {
  readonly kid: string
  readonly secret: Uint8Array
}

/** Claims checked only when configured (protocol.md §8). */
export interface VerifyOptions {
  /** `iss` must equal it. */
  readonly issuer?: string | undefined
  /** `aud` must be or contain it. */
  readonly audience?: string | undefined
  /** `oa_claims_version` must equal it (a numeric claim is compared by its decimal form). */
  readonly claimsVersion?: string | undefined
}

/** The dev key could not be created or read. */
export class AuthConfigError extends Schema.TaggedError<AuthConfigError>()("AuthConfigError", {
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/**
 * The keys tokens are checked against (protocol.md §8): an HS256 keyring, a JWKS keyring (RS256, ES256), or both. A
 * token's `alg` picks the keyring, and only the algorithms of a configured keyring are accepted: `none` never is.
 */
export interface Keyring {
  readonly hmac: ReadonlyArray<HmacKey>
  readonly jwks?: JwksSource | undefined
}

const hmacAlgorithms = ["HS256"]
const clockToleranceSeconds = 30
const requiredClaims = ["sub", "exp", "iat", "jti", "oa_org_id", "oa_sync_scopes"]

const unauthorized = (reason: Unauthorized["reason"], message: string) => new Unauthorized({ reason, message })

/**
 * jose reports every refusal as a typed error; each maps to one reason. Messages are ours: claim names come from a
 * fixed list, never from the token, and no value is echoed.
 */
const fromJoseError = (algorithms: ReadonlyArray<string>) => (error: unknown): Unauthorized => {
  if (error instanceof errors.JWTExpired) return unauthorized("expired", "token has expired")
  if (error instanceof errors.JWTClaimValidationFailed) {
    if (error.reason === "missing") return unauthorized("missing_claim", `token has no "${error.claim}" claim`)
    if (error.claim === "nbf" && error.reason === "check_failed") {
      return unauthorized("not_yet_valid", "token is not valid yet (nbf)")
    }
    return error.reason === "check_failed"
      ? unauthorized("bad_claim", `token's "${error.claim}" claim has an unexpected value`)
      : unauthorized("bad_claim", `token's "${error.claim}" claim is invalid`)
  }
  if (error instanceof errors.JOSEError) {
    switch (error.code) {
      case "ERR_JWS_SIGNATURE_VERIFICATION_FAILED":
        return unauthorized("bad_signature", "token signature does not verify")
      case "ERR_JOSE_ALG_NOT_ALLOWED":
      case "ERR_JOSE_NOT_SUPPORTED":
        return notAllowed(algorithms)
      case "ERR_JWKS_NO_MATCHING_KEY":
      case "ERR_JWKS_MULTIPLE_MATCHING_KEYS":
        return unauthorized("unknown_key", "token's kid names no configured key")
    }
  }
  // ERR_JWS_INVALID, ERR_JWT_INVALID, and the TypeError of an unparsable header
  return unauthorized("malformed", "token is not a well-formed signed JWT")
}

const notAllowed = (algorithms: ReadonlyArray<string>) =>
  unauthorized("algorithm_not_allowed", `token algorithm is not allowed (accepted: ${algorithms.join(", ")})`)

const Scopes = Schema.Union(Schema.Array(Schema.String), Schema.String)

/** The latest `exp` a Date can hold (8.64e15 ms after the epoch), in seconds. */
const maxExpSeconds = 8.64e12 - clockToleranceSeconds

/** The claims jose does not type-check itself (it checks exp, nbf, iat, iss, aud). */
const Claims = Schema.Struct({
  sub: Schema.NonEmptyString,
  jti: Schema.NonEmptyString,
  // as a Date: beyond its range a deadline is no time at all, and a timer set for it would never be due
  exp: Schema.Number.pipe(Schema.finite(), Schema.between(0, maxExpSeconds)),
  oa_org_id: Schema.NonEmptyString,
  oa_sync_scopes: Scopes,
  oa_claims_version: Schema.optional(Schema.Union(Schema.String, Schema.Number))
})

const decodeClaims = Schema.decodeUnknownEither(Claims)

/** Names only the claim at fault: the parse message would quote the value. */
const badClaim = (error: ParseResult.ParseError) => {
  const claim = ParseResult.ArrayFormatter.formatErrorSync(error)[0]?.path[0]
  const subject = claim === undefined ? "claims are" : `"${String(claim)}" claim is`
  return unauthorized("bad_claim", `token's ${subject} invalid`)
}

/** A list or a comma-separated string, trimmed, without empties or repeats. */
const normalizeScopes = (scopes: typeof Scopes.Type): ReadonlyArray<string> =>
  Arr.dedupe((typeof scopes === "string" ? scopes.split(",") : scopes).map((s) => s.trim()).filter((s) => s !== ""))

/**
 * A verifier over a keyring. An HS256 token's `kid` selects its key, and a token without one is tried against each
 * key in turn; an RS256 or ES256 token is checked against the JWKS key its `kid` (or, without one, its `alg`) names.
 */
export const makeVerifier = (keyring: Keyring, options: VerifyOptions = {}): TokenVerifier["Type"] => {
  const keys = keyring.hmac
  const byKid = new Map<string, Uint8Array>()
  // the first listing of a kid wins, as it would when signing
  for (const key of keys) if (!byKid.has(key.kid)) byKid.set(key.kid, key.secret)
  const jwks = keyring.jwks === undefined ? undefined : keyLookup(keyring.jwks)
  const accepted = [...(keys.length > 0 ? hmacAlgorithms : []), ...(jwks === undefined ? [] : asymmetricAlgorithms)]
  const refusal = fromJoseError(accepted)
  const required = options.claimsVersion === undefined ? requiredClaims : [...requiredClaims, "oa_claims_version"]

  // Given the raw secret, jose imports it for every token; imported once, each key serves every verify after (a
  // socket's join and every hydration request check a token). The keyring is fixed: the map is bounded by it.
  const imported = new Map<Uint8Array, Promise<JoseCryptoKey>>()
  const cryptoKey = (secret: Uint8Array) => {
    let key = imported.get(secret)
    if (key === undefined) {
      key = crypto.subtle.importKey("raw", secret, { name: "HMAC", hash: "SHA-256" }, false, ["verify"])
      imported.set(secret, key)
    }
    return key
  }

  const keyFor = (fallback: HmacKey) => (header: JWTHeaderParameters): Promise<JoseCryptoKey> => {
    if (header.kid === undefined) return cryptoKey(fallback.secret)
    const secret = byKid.get(header.kid)
    // jose catches what its key callback throws: this becomes the verify failure
    if (secret === undefined) throw new errors.JWKSNoMatchingKey()
    return cryptoKey(secret)
  }

  const attempt = (token: string, key: HmacKey, verifyOptions: JWTVerifyOptions) =>
    Effect.tryPromise({
      try: () => jwtVerify(token, keyFor(key), { ...verifyOptions, algorithms: hmacAlgorithms }),
      catch: refusal
    })

  const attemptJwks = (token: string, verifyOptions: JWTVerifyOptions) =>
    Effect.tryPromise({
      try: () => jwtVerify(token, jwks!, { ...verifyOptions, algorithms: [...asymmetricAlgorithms] }),
      catch: (error) => error instanceof KeysUnavailable ? error : refusal(error)
    }).pipe(Effect.catchIf(
      (error): error is KeysUnavailable => error instanceof KeysUnavailable,
      (error) =>
        Effect.zipRight(
          Effect.logWarning("auth: the JWKS could not be fetched", error.cause),
          Effect.fail(unauthorized("unknown_key", "the server could not fetch its signing keys; try again"))
        )
    ))

  const toPrincipal = (payload: JWTPayload): Either.Either<Principal, Unauthorized> =>
    Either.flatMap(
      Either.mapLeft(decodeClaims(payload), badClaim),
      (claims) =>
        options.claimsVersion !== undefined && String(claims.oa_claims_version) !== options.claimsVersion
          ? Either.left(unauthorized("bad_claim", `token's "oa_claims_version" claim has an unexpected value`))
          : Either.right({
            subject: claims.sub,
            orgId: claims.oa_org_id,
            scopes: normalizeScopes(claims.oa_sync_scopes),
            tokenId: claims.jti,
            expiresAt: new Date(claims.exp * 1000),
            validUntil: new Date((claims.exp + clockToleranceSeconds) * 1000)
          })
    )

  const verify = (token: string): Effect.Effect<Principal, Unauthorized> =>
    Effect.gen(function*() {
      if (token.trim() === "") return yield* unauthorized("missing_token", "no token was given")
      const header = yield* Effect.try({ try: () => decodeProtectedHeader(token), catch: refusal })
      const verifyOptions: JWTVerifyOptions = {
        requiredClaims: required,
        clockTolerance: clockToleranceSeconds,
        // the Effect clock, so that tests move time with TestClock
        currentDate: new Date(yield* Clock.currentTimeMillis),
        ...(options.issuer === undefined ? {} : { issuer: options.issuer }),
        ...(options.audience === undefined ? {} : { audience: options.audience })
      }
      // The header's alg chooses the keyring, and each keyring checks with its own algorithms only: an HS256 token
      // never meets a public key used as an HMAC secret, and `none` meets no keyring at all.
      const alg = header.alg ?? ""
      const hmac = keys.length > 0 && hmacAlgorithms.includes(alg)
      const asymmetric = jwks !== undefined && (asymmetricAlgorithms as ReadonlyArray<string>).includes(alg)
      if (!hmac && !asymmetric) return yield* notAllowed(accepted)
      // without a kid, a signature mismatch means "try the next key"; any other refusal is final, since the
      // claims are only checked once a signature verified
      const { payload } = yield* asymmetric
        ? attemptJwks(token, verifyOptions)
        : header.kid !== undefined || !Arr.isNonEmptyReadonlyArray(keys)
        ? attempt(token, keys[0]!, verifyOptions)
        : Arr.reduce(
          Arr.tailNonEmpty(keys),
          attempt(token, Arr.headNonEmpty(keys), verifyOptions),
          (previous, key) =>
            Effect.catchIf(previous, (e) => e.reason === "bad_signature", () => attempt(token, key, verifyOptions))
        )
      return yield* toPrincipal(payload)
    })

  return { verify }
}

/** A signer with one key: HS256 with a secret, or RS256 / ES256 with a private key. */
export const makeSigner = (
  signing: HmacKey | SigningKey,
  options: VerifyOptions = {}
): TokenSigner["Type"] => {
  const { alg, key }: { alg: string; key: Uint8Array | KeyObject } = "secret" in signing
    ? { alg: "HS256", key: signing.secret }
    : signing
  const sign: TokenSigner["Type"]["sign"] = (claims) =>
    Effect.flatMap(Clock.currentTimeMillis, (now) => {
      const issuedAt = Math.floor(now / 1000)
      return Effect.promise(() => {
        const jwt = new SignJWT({
          oa_org_id: claims.orgId,
          oa_sync_scopes: [...claims.scopes],
          ...(options.claimsVersion === undefined ? {} : { oa_claims_version: options.claimsVersion })
        })
          .setProtectedHeader({ alg, typ: "JWT", kid: signing.kid })
          .setSubject(claims.subject)
          .setJti(randomUUID())
          .setIssuedAt(issuedAt)
          .setExpirationTime(issuedAt + Math.floor(claims.ttlSeconds))
        if (options.issuer !== undefined) jwt.setIssuer(options.issuer)
        if (options.audience !== undefined) jwt.setAudience(options.audience)
        return jwt.sign(key)
      })
    })
  return { sign }
}

/** A verifier and a signer over a fixed HS256 keyring: every key verifies, the first signs. */
export const make = (
  keys: Arr.NonEmptyReadonlyArray<HmacKey>,
  options: VerifyOptions = {}
): TokenVerifier["Type"] & TokenSigner["Type"] => ({
  ...makeVerifier({ hmac: keys }, options),
  ...makeSigner(Arr.headNonEmpty(keys), options)
})

/**
 * `TokenVerifier` (remembering the tokens it accepted: `VerifiedTokens`) and `TokenSigner` over a fixed keyring (see
 * `make`).
 */
export const layer = (
  keys: Arr.NonEmptyReadonlyArray<HmacKey>,
  options: VerifyOptions = {}
): Layer.Layer<TokenVerifier | TokenSigner> => {
  const service = make(keys, options)
  return Layer.merge(
    Layer.effect(TokenVerifier, VerifiedTokens.cached({ verify: service.verify })),
    Layer.succeed(TokenSigner, { sign: service.sign })
  )
}

const keysFormat = `expected "kid1:secret1,kid2:secret2"`
const encoder = new TextEncoder()

/**
 * Parses a keyring. A secret is the UTF-8 bytes of its text and may contain ":" (only the first one separates);
 * errors name entries by position or kid, never by their secret. An empty value is an empty keyring.
 */
export const parseKeyring = (value: string): Either.Either<ReadonlyArray<HmacKey>, string> => {
  if (value.trim() === "") return Either.right([])
  const keys: Array<HmacKey> = []
  for (const [index, entry] of value.split(",").entries()) {
    const position = `entry ${index + 1}`
    const colon = entry.indexOf(":")
    if (entry.trim() === "") return Either.left(`${position} is empty (${keysFormat})`)
    if (colon < 0) return Either.left(`${position} has no ":" between kid and secret (${keysFormat})`)
    const kid = entry.slice(0, colon).trim()
    const secret = entry.slice(colon + 1).trim()
    if (kid === "") return Either.left(`${position} has an empty kid (${keysFormat})`)
    if (secret === "") return Either.left(`key "${kid}" has an empty secret`)
    if (keys.some((key) => key.kid === kid)) return Either.left(`kid "${kid}" is listed twice`)
    keys.push({ kid, secret: encoder.encode(secret) })
  }
  return Either.right(keys)
}

const optionalText = (name: string, description: string) =>
  Config.string(name).pipe(
    Config.option,
    // an empty value (NAME= in an env file) means unset
    Config.map(Option.filter((value) => value.trim() !== "")),
    Config.withDescription(description)
  )

/** How tokens are checked, read from the environment. */
export const AuthConfig = Config.all({
  keys: Config.redacted("KHALA_AUTH_HS256_KEYS").pipe(
    Config.mapOrFail((value) =>
      Either.mapLeft(
        parseKeyring(Redacted.value(value)),
        (message) => ConfigError.InvalidData(["KHALA_AUTH_HS256_KEYS"], message)
      )
    ),
    Config.withDefault([]),
    Config.withDescription(
      "HS256 keyring kid1:secret1,kid2:secret2: every key verifies, the first signs (rotation: prepend the new key)"
    )
  ),
  issuer: optionalText("KHALA_AUTH_ISSUER", "When set, tokens must carry this iss"),
  audience: optionalText("KHALA_AUTH_AUDIENCE", "When set, tokens must carry this aud"),
  claimsVersion: optionalText("KHALA_AUTH_CLAIMS_VERSION", "When set, tokens must carry this oa_claims_version"),
  jwksFile: optionalText("KHALA_AUTH_JWKS_FILE", "A JWKS file of public RS256 / ES256 keys that verify tokens"),
  jwksUrl: optionalText("KHALA_AUTH_JWKS_URL", "A JWKS URL of public RS256 / ES256 keys that verify tokens").pipe(
    Config.mapOrFail((url) =>
      Option.match(url, {
        onNone: () => Either.right(Option.none<URL>()),
        onSome: (text) =>
          URL.canParse(text) && /^https?:$/.test(new URL(text).protocol)
            ? Either.right(Option.some(new URL(text)))
            : Either.left(ConfigError.InvalidData(["KHALA_AUTH_JWKS_URL"], `expected an http(s) URL`))
      })
    )
  ),
  jwksCooldown: durationWithin("KHALA_AUTH_JWKS_COOLDOWN", "1 second", "1 day").pipe(
    Config.withDefault(Duration.seconds(30)),
    Config.withDescription("Least time between two fetches of KHALA_AUTH_JWKS_URL (an unknown kid refetches)")
  ),
  jwksMaxAge: durationWithin("KHALA_AUTH_JWKS_MAX_AGE", "1 second", "30 days").pipe(
    Config.withDefault(Duration.minutes(10)),
    Config.withDescription("Age after which the key set of KHALA_AUTH_JWKS_URL is fetched again")
  ),
  devKey: Config.boolean("KHALA_AUTH_DEV_KEY").pipe(
    Config.option,
    Config.withDescription(
      "Without KHALA_AUTH_HS256_KEYS: true signs and verifies with a development key kept in KHALA_DATA_DIR; " +
        "unset, that happens only on the embedded database (no DATABASE_URL) outside production"
    )
  ),
  // the permissive default is only for the embedded database: a server on a shared Postgres says what it wants
  embedded: Config.string("DATABASE_URL").pipe(
    Config.option,
    Config.map((url) => Option.isNone(url) || url.value.trim() === "")
  ),
  dataDir: Config.string("KHALA_DATA_DIR").pipe(
    Config.withDefault("./.khala"),
    Config.withDescription("Directory of local state, where the development auth key is kept")
  ),
  nodeEnv: Config.string("NODE_ENV").pipe(Config.withDefault("development"))
})

const devKeyFileName = "dev-auth-key"
const devKid = "dev"
// RFC 7518 §3.2: an HS256 key at least as long as the hash
const minimumSecretBytes = 32

const weakKeyWarning = (key: HmacKey) =>
  key.secret.length < minimumSecretBytes
    ? Effect.logWarning(
      `auth: HS256 key "${key.kid}" is ${key.secret.length} bytes; use at least ${minimumSecretBytes} random bytes`
    )
    : Effect.void

/** Writes the file only if it does not exist, atomically, so that a concurrent `serve` and `token` agree. */
const createExclusive = (file: string, content: string) => {
  const temp = `${file}.${process.pid}.${randomUUID()}.tmp`
  writeFileSync(temp, content, { mode: 0o600, flag: "wx" })
  try {
    linkSync(temp, file)
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error
  } finally {
    rmSync(temp, { force: true })
  }
}

/**
 * The development key in `<dataDir>/dev-auth-key`, created on first use (directory 0700, file 0600, 32 random bytes
 * base64url). Its secret is the text of the file, so `KHALA_AUTH_HS256_KEYS=dev:<that text>` is the same key.
 */
const devKey = (dataDir: string) =>
  Effect.gen(function*() {
    const file = join(resolve(dataDir), devKeyFileName)
    const { created, loose, text } = yield* Effect.try({
      try: () => {
        mkdirSync(resolve(dataDir), { recursive: true, mode: 0o700 })
        const created = !existsSync(file)
        if (created) createExclusive(file, `${randomBytes(32).toString("base64url")}\n`)
        return {
          created,
          loose: (statSync(file).mode & 0o077) !== 0,
          text: readFileSync(file, "utf8").trim()
        }
      },
      catch: (cause) =>
        new AuthConfigError({
          message: `cannot use the development auth key ${file}: ${cause instanceof Error ? cause.message : cause}`,
          cause
        })
    })
    if (text.length < minimumSecretBytes) {
      return yield* new AuthConfigError({
        message: `the development auth key ${file} is shorter than ${minimumSecretBytes} characters; ` +
          `delete it to have a new one made`
      })
    }
    yield* Effect.logWarning(
      `auth: KHALA_AUTH_HS256_KEYS is not set, so tokens are signed and verified with the development key ` +
        `${file}${created ? " (created now)" : ""}. Set KHALA_AUTH_HS256_KEYS for any real deployment.`
    )
    if (loose) yield* Effect.logWarning(`auth: ${file} is readable by other users; chmod 600 it`)
    return { kid: devKid, secret: encoder.encode(text) }
  })

/** The JWKS keyring the configuration names, if any: a file is read and checked now, so that a bad one stops the start. */
const jwksSource = (
  config: Config.Config.Success<typeof AuthConfig>
): Effect.Effect<Option.Option<JwksSource>, ConfigError.ConfigError> =>
  Effect.gen(function*() {
    if (Option.isSome(config.jwksFile) && Option.isSome(config.jwksUrl)) {
      return yield* Effect.fail(
        ConfigError.InvalidData(["KHALA_AUTH_JWKS_FILE"], "set KHALA_AUTH_JWKS_FILE or KHALA_AUTH_JWKS_URL, not both")
      )
    }
    if (Option.isSome(config.jwksUrl)) {
      return Option.some<JwksSource>({
        _tag: "Remote",
        url: config.jwksUrl.value,
        cooldown: config.jwksCooldown,
        maxAge: config.jwksMaxAge
      })
    }
    if (Option.isNone(config.jwksFile)) return Option.none()
    const file = resolve(config.jwksFile.value)
    const invalid = (message: string) => ConfigError.InvalidData(["KHALA_AUTH_JWKS_FILE"], `${file}: ${message}`)
    const text = yield* Effect.try({
      try: () => readFileSync(file, "utf8"),
      catch: (cause) => invalid(cause instanceof Error ? cause.message : String(cause))
    })
    const parsed = yield* Effect.try({ try: () => JSON.parse(text) as unknown, catch: () => invalid("not JSON") })
    const keys = yield* Either.mapLeft(validateKeySet(parsed), invalid)
    return Option.some<JwksSource>({ _tag: "Local", keys })
  })

/** Signs nothing: the configuration has a JWKS keyring only, whose private keys the server never holds. */
const noSigner: TokenSigner["Type"] = {
  sign: () =>
    Effect.dieMessage("no HS256 key to sign with: give khala token --private-key, or set KHALA_AUTH_HS256_KEYS")
}

/** The options of `AuthConfig` that every token is checked (and signed) with. */
export const verifyOptionsOf = (config: Config.Config.Success<typeof AuthConfig>): VerifyOptions => ({
  issuer: Option.getOrUndefined(config.issuer),
  audience: Option.getOrUndefined(config.audience),
  claimsVersion: Option.getOrUndefined(config.claimsVersion)
})

/**
 * `TokenVerifier` and `TokenSigner` from the environment (`AuthConfig`). Without keys, the development key in
 * `KHALA_DATA_DIR` (kept with the embedded database it protects, so that `khala serve` accepts what `khala token`
 * prints) is used only when asked for (`KHALA_AUTH_DEV_KEY=true`), or on the embedded database outside production;
 * otherwise no keys is a configuration error, never a silent default. The verifier remembers the tokens it accepted
 * (`VerifiedTokens`).
 */
export const layerConfig: Layer.Layer<TokenVerifier | TokenSigner, ConfigError.ConfigError | AuthConfigError> = Layer
  .unwrapEffect(Effect.gen(function*() {
    const config = yield* AuthConfig
    const options = verifyOptionsOf(config)
    const jwks = Option.getOrUndefined(yield* jwksSource(config))
    if (jwks !== undefined) {
      for (const key of config.keys) yield* weakKeyWarning(key)
      return Layer.merge(
        Layer.effect(TokenVerifier, VerifiedTokens.cached(makeVerifier({ hmac: config.keys, jwks }, options))),
        Layer.succeed(
          TokenSigner,
          Arr.isNonEmptyReadonlyArray(config.keys) ? makeSigner(Arr.headNonEmpty(config.keys), options) : noSigner
        )
      )
    }
    if (Arr.isNonEmptyReadonlyArray(config.keys)) {
      for (const key of config.keys) yield* weakKeyWarning(key)
      return layer(config.keys, options)
    }
    const useDevKey = Option.getOrElse(config.devKey, () => config.embedded && config.nodeEnv !== "production")
    if (!useDevKey) {
      const why = Option.isSome(config.devKey)
        ? "KHALA_AUTH_DEV_KEY is false"
        : !config.embedded
        ? "the database is DATABASE_URL"
        : "NODE_ENV is production"
      return yield* Effect.fail(ConfigError.MissingData(
        ["KHALA_AUTH_HS256_KEYS"],
        `no auth keys are configured and ${why}: set KHALA_AUTH_HS256_KEYS=kid1:secret1[,kid2:secret2] ` +
          `or KHALA_AUTH_JWKS_FILE / KHALA_AUTH_JWKS_URL ` +
          `(or KHALA_AUTH_DEV_KEY=true for a development key kept in ${resolve(config.dataDir)})`
      ))
    }
    return layer([yield* devKey(config.dataDir)], options)
  }))
