/**
 * RS256 and ES256 keys (protocol.md §8): a JWKS keyring that verifies, read from a file or fetched from a URL, and the
 * private key `khala token` signs with. Each key is pinned to one algorithm, so that a token cannot pick how its
 * signature is checked: an RSA key verifies RS256 only, an EC P-256 key ES256 only, and neither ever verifies an
 * HMAC (HS256 tokens are checked against the HS256 keyring alone).
 */
import { Duration, Either } from "effect"
import type { JSONWebKeySet, JWK, JWTVerifyGetKey } from "jose"
import { createLocalJWKSet, createRemoteJWKSet, errors } from "jose"
import type { KeyObject } from "node:crypto"
import { createPrivateKey } from "node:crypto"

/** The algorithms a JWKS keyring verifies. */
export const asymmetricAlgorithms = ["RS256", "ES256"] as const
export type AsymmetricAlgorithm = typeof asymmetricAlgorithms[number]

/** Where the JWKS keyring comes from. */
export type JwksSource =
  | { readonly _tag: "Local"; readonly keys: JSONWebKeySet }
  | {
    readonly _tag: "Remote"
    readonly url: URL
    /**
     * Least time between two fetches: a token naming an unknown `kid` triggers a refetch at most this often, so that
     * a stream of forged kids cannot make the server hammer the key endpoint.
     */
    readonly cooldown: Duration.Duration
    /** Age after which the set is fetched again before use. */
    readonly maxAge: Duration.Duration
  }

/**
 * The algorithm a JWK is pinned to: its own `alg`, else the one its `kty` (and `crv`) allows. Left: why it cannot be
 * used, naming the key by its kid.
 */
export const pinnedAlgorithm = (jwk: JWK): Either.Either<AsymmetricAlgorithm, string> => {
  const name = typeof jwk.kid === "string" ? `key "${jwk.kid}"` : "a key without kid"
  const byType: AsymmetricAlgorithm | undefined = jwk.kty === "RSA"
    ? "RS256"
    : jwk.kty === "EC" && jwk.crv === "P-256"
    ? "ES256"
    : undefined
  if (byType === undefined) {
    return Either.left(
      `${name} is ${String(jwk.kty)}${jwk.crv === undefined ? "" : ` ${String(jwk.crv)}`}: only RSA (RS256) and ` +
        `EC P-256 (ES256) keys are accepted`
    )
  }
  if (jwk.alg !== undefined && jwk.alg !== byType) {
    return Either.left(`${name} has alg ${String(jwk.alg)}, which its ${jwk.kty} key cannot be used for`)
  }
  return Either.right(byType)
}

const isRecord = (value: unknown): value is Record<string, unknown> =>
  typeof value === "object" && value !== null && !Array.isArray(value)

/**
 * Checks a verifying key set: at least one key, each with a kid of its own, public, for signatures, and usable for
 * RS256 or ES256. Each key comes back with its `alg` set, which pins it (jose matches a token's `alg` to it).
 */
export const validateKeySet = (value: unknown): Either.Either<JSONWebKeySet, string> => {
  if (!isRecord(value) || !Array.isArray(value.keys)) return Either.left(`expected a JWKS: {"keys": [...]}`)
  if (value.keys.length === 0) return Either.left("the key set has no keys")
  const keys: Array<JWK> = []
  const kids = new Set<string>()
  for (const [index, entry] of value.keys.entries()) {
    if (!isRecord(entry)) return Either.left(`key ${index + 1} is not an object`)
    const jwk = entry as JWK
    if (typeof jwk.kid !== "string" || jwk.kid === "") return Either.left(`key ${index + 1} has no kid`)
    if (kids.has(jwk.kid)) return Either.left(`kid "${jwk.kid}" is listed twice`)
    kids.add(jwk.kid)
    if (jwk.d !== undefined) return Either.left(`key "${jwk.kid}" is a private key: publish only public keys`)
    if (jwk.use !== undefined && jwk.use !== "sig") return Either.left(`key "${jwk.kid}" is not for signatures`)
    const alg = pinnedAlgorithm(jwk)
    if (Either.isLeft(alg)) return Either.left(alg.left)
    keys.push({ ...jwk, alg: alg.right })
  }
  return Either.right({ keys })
}

/** A fetch of a remote key set failed: a fault of the server's configuration or network, not of the token. */
export class KeysUnavailable extends Error {
  constructor(override readonly cause: unknown) {
    super("the signing keys could not be fetched")
  }
}

/**
 * jose's key lookup for a source. A remote set is cached and fetched again when stale or when a token names a kid
 * it does not hold (at most once per cooldown); keys stay usable for as long as the set lists them, which is what
 * lets an issuer rotate by publishing the new key beside the old one.
 */
export const keyLookup = (source: JwksSource): JWTVerifyGetKey => {
  const lookup = source._tag === "Local"
    ? createLocalJWKSet(source.keys)
    : createRemoteJWKSet(source.url, {
      cooldownDuration: Duration.toMillis(source.cooldown),
      cacheMaxAge: Duration.toMillis(source.maxAge),
      timeoutDuration: 5000
    })
  return async (header, token) => {
    try {
      return await lookup(header, token)
    } catch (error) {
      // a refusal of the token passes as it is; anything else is the key source failing
      if (
        error instanceof errors.JWKSNoMatchingKey || error instanceof errors.JWKSMultipleMatchingKeys ||
        error instanceof errors.JOSENotSupported
      ) throw error
      throw new KeysUnavailable(error)
    }
  }
}

/** A private key to sign with, and the header it signs under. */
export interface SigningKey {
  readonly kid: string
  readonly alg: AsymmetricAlgorithm
  readonly key: KeyObject
}

/**
 * A private key from the text of a file: a private JWK (its `kid`, or `kid` given) or a PKCS8 PEM (with `kid`).
 * Left: a one-line reason.
 */
export const parsePrivateKey = (text: string, kid: string | undefined): Either.Either<SigningKey, string> => {
  const trimmed = text.trim()
  let key: KeyObject
  let jwkKid: string | undefined
  let jwkAlg: unknown
  try {
    if (trimmed.startsWith("{")) {
      const jwk = JSON.parse(trimmed) as unknown
      if (!isRecord(jwk) || typeof jwk.d !== "string") return Either.left("the JWK is not a private key")
      jwkKid = typeof jwk.kid === "string" && jwk.kid !== "" ? jwk.kid : undefined
      jwkAlg = jwk.alg
      key = createPrivateKey({ key: jwk as never, format: "jwk" })
    } else {
      key = createPrivateKey({ key: trimmed, format: "pem" })
    }
  } catch (error) {
    return Either.left(`not a private JWK or PKCS8 PEM key (${error instanceof Error ? error.message : error})`)
  }
  const jwk = key.export({ format: "jwk" })
  const alg = pinnedAlgorithm({ ...jwk, ...(jwkAlg === undefined ? {} : { alg: jwkAlg as string }) })
  if (Either.isLeft(alg)) return Either.left(alg.left.replace("a key without kid", "the key"))
  const chosen = kid ?? jwkKid
  if (chosen === undefined) return Either.left("the key has no kid: give one with --kid")
  return Either.right({ kid: chosen, alg: alg.right, key })
}
