/**
 * Payload hashes (protocol.md §5.4): sha256 over the document's canonical JSON, rendered as
 * `sha256:<lowercase hex>` in JSON contexts and as the raw 32 bytes in proto `bytes` fields.
 *
 * Everything here is browser-safe. The synchronous functions use `@noble/hashes`' portable SHA-256; `digest`
 * uses Web Crypto, which is native but asynchronous; `PayloadHashNode` offers the same API on
 * `node:crypto` for servers.
 *
 * @since 0.1.0
 */
import { sha256 } from "@noble/hashes/sha2"
import * as Effect from "effect/Effect"
import * as Either from "effect/Either"
import * as Option from "effect/Option"
import * as Schema from "effect/Schema"
import { canonicalize, type CanonicalJsonError } from "./CanonicalJson.js"

/**
 * The JSON rendering of a payload hash: `sha256:` followed by 64 lowercase hex digits.
 *
 * @since 0.1.0
 */
export const PayloadHash = Schema.String.pipe(
  Schema.pattern(/^sha256:[0-9a-f]{64}$/),
  Schema.brand("khala/PayloadHash"),
  Schema.annotations({ identifier: "PayloadHash" })
)

/**
 * @since 0.1.0
 */
export type PayloadHash = typeof PayloadHash.Type

/**
 * A function computing a SHA-256 digest, so that the hashing backend can be chosen per platform.
 *
 * @since 0.1.0
 */
export type Sha256 = (data: Uint8Array) => Uint8Array

const prefix = "sha256:"
const encoder = new TextEncoder()
const hexDigits = Array.from({ length: 256 }, (_, byte) => byte.toString(16).padStart(2, "0"))

/**
 * Renders a raw 32-byte digest as `sha256:<hex>`.
 *
 * @since 0.1.0
 */
export const format = (digest: Uint8Array): PayloadHash => {
  let hex = prefix
  for (const byte of digest) hex += hexDigits[byte]
  return PayloadHash.make(hex)
}

/**
 * Parses `sha256:<hex>` into the raw 32-byte digest, the form proto `bytes` fields carry.
 *
 * @since 0.1.0
 */
export const parse = (hash: string): Option.Option<Uint8Array> => {
  if (!Schema.is(PayloadHash)(hash)) return Option.none()
  const bytes = new Uint8Array(32)
  for (let i = 0; i < 32; i++) {
    bytes[i] = Number.parseInt(hash.slice(prefix.length + i * 2, prefix.length + i * 2 + 2), 16)
  }
  return Option.some(bytes)
}

/**
 * UTF-8 bytes of a canonical JSON string: what the hash covers and what proto `Update.payload` carries.
 *
 * @since 0.1.0
 */
export const utf8 = (text: string): Uint8Array => encoder.encode(text)

/**
 * Builds the payload-hash functions over a given SHA-256 implementation.
 *
 * @since 0.1.0
 */
export const makeHasher = (hash: Sha256) => {
  const bytesOfCanonical = (canonicalJson: string): Uint8Array => hash(utf8(canonicalJson))
  return {
    /** Raw digest of a string that is already canonical JSON (for example a stored journal payload). */
    bytesOfCanonical,
    /** `sha256:<hex>` of a string that is already canonical JSON. */
    ofCanonical: (canonicalJson: string): PayloadHash => format(bytesOfCanonical(canonicalJson)),
    /** Raw 32-byte digest of a JSON value. */
    bytes: (json: unknown): Either.Either<Uint8Array, CanonicalJsonError> =>
      Either.map(canonicalize(json), bytesOfCanonical),
    /** `sha256:<hex>` of a JSON value. */
    hash: (json: unknown): Either.Either<PayloadHash, CanonicalJsonError> =>
      Either.map(canonicalize(json), (canonical) => format(bytesOfCanonical(canonical)))
  } as const
}

const portable = makeHasher(sha256)

/**
 * `sha256:<hex>` of a JSON value, synchronously and on every platform.
 *
 * @since 0.1.0
 */
export const payloadHash: (json: unknown) => Either.Either<PayloadHash, CanonicalJsonError> = portable.hash

/**
 * Raw 32-byte digest of a JSON value, synchronously and on every platform.
 *
 * @since 0.1.0
 */
export const payloadHashBytes: (json: unknown) => Either.Either<Uint8Array, CanonicalJsonError> = portable.bytes

/**
 * `sha256:<hex>` of a string that is already canonical JSON.
 *
 * @since 0.1.0
 */
export const payloadHashOfCanonical: (canonicalJson: string) => PayloadHash = portable.ofCanonical

/**
 * Raw 32-byte digest of a JSON value computed with Web Crypto (`crypto.subtle`), which is native and
 * fast for large documents but only asynchronous.
 *
 * @since 0.1.0
 */
export const digestBytes = (json: unknown): Effect.Effect<Uint8Array, CanonicalJsonError> =>
  Effect.flatMap(
    canonicalize(json),
    (canonical) =>
      Effect.promise(() => globalThis.crypto.subtle.digest("SHA-256", utf8(canonical))).pipe(
        Effect.map((buffer) => new Uint8Array(buffer))
      )
  )

/**
 * `sha256:<hex>` of a JSON value computed with Web Crypto.
 *
 * @since 0.1.0
 */
export const digest = (json: unknown): Effect.Effect<PayloadHash, CanonicalJsonError> =>
  Effect.map(digestBytes(json), format)
