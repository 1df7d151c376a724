/**
 * A verifier that remembers, for a short while, the tokens it accepted. A hydrating client sends the same bearer
 * token with every page of a listing, and checking its signature again each time cost a tenth of a page.
 */
import { Cache, Clock, Duration, Effect, Exit } from "effect"
import type { Principal } from "../services/TokenVerifier.js"
import { TokenVerifier } from "../services/TokenVerifier.js"

export interface CacheOptions {
  /** Most tokens remembered; the least recently used is forgotten first. */
  readonly capacity?: number
  /**
   * How long an accepted token is taken at its word without checking it again: bounds how long a token signed by a
   * key since removed from the keyring is still accepted. Refusals are never remembered.
   */
  readonly timeToLive?: Duration.DurationInput
}

export const defaultCapacity = 4096
export const defaultTimeToLive = Duration.seconds(30)

/**
 * `verifier`, with accepted tokens remembered (`CacheOptions`). A remembered token past its `validUntil` is checked
 * again, so it is refused as expired exactly when the verifier would refuse it. Revocation is not the verifier's
 * business: callers check it on every use, remembered or not.
 */
export const cached = (
  verifier: TokenVerifier["Type"],
  options: CacheOptions = {}
): Effect.Effect<TokenVerifier["Type"]> => {
  const timeToLive = options.timeToLive ?? defaultTimeToLive
  return Effect.map(
    Cache.makeWith({
      capacity: options.capacity ?? defaultCapacity,
      lookup: (token: string) => verifier.verify(token),
      timeToLive: Exit.match({
        onFailure: () => Duration.zero,
        onSuccess: () => timeToLive
      })
    }),
    (cache) => {
      const stillValid = (token: string, principal: Principal) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          now <= principal.validUntil.getTime()
            ? Effect.succeed(principal)
            : Effect.zipRight(cache.invalidate(token), verifier.verify(token)))
      return TokenVerifier.of({
        verify: (token) =>
          cache.get(token).pipe(
            // a refusal is answered to the lookups that shared it, and forgotten at once
            Effect.tapError(() => cache.invalidate(token)),
            Effect.flatMap((principal) => stillValid(token, principal))
          )
      })
    }
  )
}
