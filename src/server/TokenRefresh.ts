/**
 * The token a socket is served under, and its replacement in band (protocol.md §5.7): a `sync:auth` token must verify
 * and speak for the same principal (`sub` and `oa_org_id`); it then moves the socket's deadline and may narrow its
 * scopes. The socket's timer reads the current token here and is woken when it changes, so a deadline that moves
 * (later or earlier) is kept from then on.
 */
import { Deferred, Effect, Either, FiberId } from "effect"
import type { Principal, Unauthorized } from "../services/TokenVerifier.js"

/** The current token of one socket. */
export interface Credentials {
  readonly current: () => Principal
  /** Replaces the token; wakes whoever waits on the one it replaces. */
  readonly replace: (next: Principal) => Effect.Effect<void>
  /** Waits until the token is no longer `seen` (at once when it was replaced already). */
  readonly changedFrom: (seen: Principal) => Effect.Effect<void>
}

/** The credentials of a socket accepted with `initial`. */
export const make = (initial: Principal): Effect.Effect<Credentials> =>
  Effect.sync(() => {
    let principal = initial
    // completed when `principal` is replaced, then replaced itself: a waiter never misses a change
    let replaced = Deferred.unsafeMake<void>(FiberId.none)
    return {
      current: () => principal,
      replace: (next) =>
        Effect.suspend(() => {
          const done = replaced
          principal = next
          replaced = Deferred.unsafeMake<void>(FiberId.none)
          return Deferred.succeed(done, undefined)
        }),
      changedFrom: (seen) => Effect.suspend(() => (principal === seen ? Deferred.await(replaced) : Effect.void))
    }
  })

/**
 * Why a refresh is refused: the verifier's reason, or `principal_changed` for a valid token of another `sub` or org
 * (a socket never changes hands: its subscriptions were authorized for one principal, I7).
 */
export type RefusedReason = Unauthorized["reason"] | "principal_changed" | "no_valid_expiry"

export interface Refused {
  readonly reason: RefusedReason
  readonly message: string
}

/** Whether `next` may replace `current` on one socket. */
export const check = (current: Principal, next: Principal): Either.Either<Principal, Refused> => {
  if (next.subject !== current.subject || next.orgId !== current.orgId) {
    return Either.left({
      reason: "principal_changed",
      message: "a refreshed token must name the same sub and oa_org_id"
    })
  }
  // the socket's timer could keep no deadline that is no time at all
  if (!Number.isFinite(next.validUntil.getTime())) {
    return Either.left({ reason: "no_valid_expiry", message: "token has no valid expiry" })
  }
  return Either.right(next)
}

/** Verifies a `sync:auth` token and checks it against the socket's current one. */
export const verifyRefresh = (
  verify: (token: string) => Effect.Effect<Principal, Unauthorized>,
  current: Principal,
  token: string
): Effect.Effect<Principal, Refused> =>
  verify(token).pipe(
    Effect.mapError((error): Refused => ({ reason: error.reason, message: error.message })),
    Effect.flatMap((next) => check(current, next))
  )

/**
 * When the socket is told its token expires soon: `warning` before `exp`, but never after the close itself (a token
 * accepted within the clock tolerance is already past `exp`), and at once when that moment has passed.
 */
export const warnAt = (principal: Principal, warning: number): number =>
  Math.min(principal.expiresAt.getTime() - warning, principal.validUntil.getTime())
