/**
 * The revocations a node holds in memory (protocol.md §8), shared by every implementation of `Revocations`: the edge
 * asks it for each connect and request, and each live socket waits on it for its own revocation. A waiter is kept
 * under its token's `jti` and `sub`, so a revocation wakes only the sockets it names, whatever their number.
 */
import { Clock, Deferred, Effect } from "effect"
import type { Revocation, RevocationTarget, Revoked } from "../services/Revocations.js"

const keyOf = (target: RevocationTarget) => "tokenId" in target ? `jti:${target.tokenId}` : `sub:${target.subject}`
const keysOf = (principal: Revoked) => [keyOf({ tokenId: principal.tokenId }), keyOf({ subject: principal.subject })]

export interface RevocationSet {
  /** Takes revocations in (each replaces an earlier one of its target), and wakes the waiters of those in force. */
  readonly apply: (revocations: ReadonlyArray<Revocation>) => Effect.Effect<void>
  /** `apply` at a given instant, synchronously: for a listener's callback. */
  readonly unsafeApply: (revocations: ReadonlyArray<Revocation>, now: number) => void
  readonly isRevoked: (principal: Revoked) => Effect.Effect<boolean>
  readonly awaitRevoked: (principal: Revoked) => Effect.Effect<void>
}

export const make = Effect.sync((): RevocationSet => {
  // key → the end of its revocation, in epoch milliseconds
  const until = new Map<string, number>()
  const waiters = new Map<string, Set<Deferred.Deferred<void>>>()

  const inForce = (key: string, now: number) => (until.get(key) ?? 0) > now

  const unsafeApply = (revocations: ReadonlyArray<Revocation>, now: number) => {
    for (const [key, end] of until) if (end <= now) until.delete(key)
    for (const revocation of revocations) {
      const key = keyOf(revocation.target)
      const end = revocation.until.getTime()
      if (end <= now) {
        until.delete(key)
        continue
      }
      until.set(key, end)
      for (const waiter of waiters.get(key) ?? []) Deferred.unsafeDone(waiter, Effect.void)
    }
  }
  const apply = (revocations: ReadonlyArray<Revocation>) =>
    Effect.map(Clock.currentTimeMillis, (now) => unsafeApply(revocations, now))

  const isRevoked = (principal: Revoked) =>
    Effect.map(Clock.currentTimeMillis, (now) => keysOf(principal).some((key) => inForce(key, now)))

  const register = (keys: ReadonlyArray<string>, waiter: Deferred.Deferred<void>) =>
    Effect.sync(() => {
      for (const key of keys) {
        const set = waiters.get(key) ?? new Set()
        set.add(waiter)
        waiters.set(key, set)
      }
    })
  const unregister = (keys: ReadonlyArray<string>, waiter: Deferred.Deferred<void>) =>
    Effect.sync(() => {
      for (const key of keys) {
        const set = waiters.get(key)
        set?.delete(waiter)
        if (set?.size === 0) waiters.delete(key)
      }
    })

  // registered before the check, so that a revocation applied in between is not missed
  const awaitRevoked = (principal: Revoked) => {
    const keys = keysOf(principal)
    return Effect.acquireUseRelease(
      Effect.tap(Deferred.make<void>(), (waiter) => register(keys, waiter)),
      (waiter) => Effect.flatMap(isRevoked(principal), (revoked) => revoked ? Effect.void : Deferred.await(waiter)),
      (waiter) => unregister(keys, waiter)
    )
  }

  return { apply, unsafeApply, isRevoked, awaitRevoked }
})
