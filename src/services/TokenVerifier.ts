import type { Effect } from "effect"
import { Context, Schema } from "effect"

/** Who a verified token speaks for (protocol.md §8): the claims the edge authorizes with. */
export interface Principal {
  /** `sub` */
  readonly subject: string
  /** `oa_org_id`: the only org whose rows this principal may receive (I7). */
  readonly orgId: string
  /** `oa_sync_scopes`: topics the principal may subscribe to, trimmed, without empties or repeats. */
  readonly scopes: ReadonlyArray<string>
  /** `jti`: what a revocation names. */
  readonly tokenId: string
  /** `exp` */
  readonly expiresAt: Date
  /**
   * The last instant the verifier accepts the token: `exp` plus the clock tolerance it grants (protocol.md §8: 30 s). A
   * socket is served until then, so that acceptance and the socket's deadline agree.
   */
  readonly validUntil: Date
}

/**
 * A token was refused. `reason` tells a caller (and the logs) what was wrong; `message` says it in words without
 * echoing the token, a secret, or any claim value.
 */
export class Unauthorized extends Schema.TaggedError<Unauthorized>()("Unauthorized", {
  reason: Schema.Literal(
    "missing_token",
    "malformed",
    "unknown_key",
    "algorithm_not_allowed",
    "bad_signature",
    "expired",
    "not_yet_valid",
    "missing_claim",
    "bad_claim",
    // a valid token that a revocation names (protocol.md §8)
    "revoked"
  ),
  message: Schema.String
}) {}

/** Checks a bearer token (the socket `token` param, the `authToken` subprotocol, `Authorization: Bearer`). */
export class TokenVerifier extends Context.Tag("khala/TokenVerifier")<TokenVerifier, {
  readonly verify: (token: string) => Effect.Effect<Principal, Unauthorized>
}>() {}

/** Issues tokens the `TokenVerifier` of the same keyring accepts: for `khala token`, tests and trusted services. */
export class TokenSigner extends Context.Tag("khala/TokenSigner")<TokenSigner, {
  /** A token with `iat` now, `exp` `ttlSeconds` later, a random `jti`, and the signing key's `kid` header. */
  readonly sign: (claims: {
    readonly subject: string
    readonly orgId: string
    readonly scopes: ReadonlyArray<string>
    readonly ttlSeconds: number
  }) => Effect.Effect<string>
}>() {}
