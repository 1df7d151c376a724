import { Context, Effect } from "effect"
import type { StorageError } from "./StorageError.js"
import type { Principal } from "./TokenVerifier.js"

/** What a revocation names (protocol.md §8): one token by its `jti`, or every token of a `sub`. */
export type RevocationTarget = { readonly tokenId: string } | { readonly subject: string }

/** A revocation in force until `until`; one whose `until` has passed (or is now) names no token any more. */
export interface Revocation {
  readonly target: RevocationTarget
  readonly until: Date
}

/** The claims a revocation is matched against. */
export type Revoked = Pick<Principal, "subject" | "tokenId">

/**
 * Revoked tokens (protocol.md §5.7, §8). Every node keeps the revocations in force in memory, so that the edge asks
 * without a query per socket or request; a revocation made on any node (or by `khala revoke`) reaches every node's
 * memory within about a second.
 */
export class Revocations extends Context.Tag("khala/Revocations")<Revocations, {
  /**
   * Revokes the target until `until` (a later revocation of the same target replaces it: an `until` now or in the
   * past lifts it). Known to this node at once, to the others within about a second.
   */
  readonly revoke: (target: RevocationTarget, until: Date) => Effect.Effect<void, StorageError>
  /** Whether a revocation in force names the token's `jti` or `sub`, from memory. */
  readonly isRevoked: (principal: Revoked) => Effect.Effect<boolean>
  /**
   * Completes once a revocation in force names the token (at once if one does already): a live socket waits on it,
   * so that it learns of its revocation without polling.
   */
  readonly awaitRevoked: (principal: Revoked) => Effect.Effect<void>
}>() {}

/**
 * Revocations made by other processes, as they are made: a database channel between processes (Postgres `LISTEN`).
 * Without one (the embedded database, memory), the poll alone carries them; a lost or repeated signal only costs
 * latency, since the poll re-reads every revocation.
 */
export class RevocationSignals extends Context.Reference<RevocationSignals>()("khala/RevocationSignals", {
  defaultValue: (): {
    /**
     * Receives revocations for as long as it runs: `onRevocation` synchronously for each, `onConnected` after every
     * (re)connection, since signals sent while disconnected are lost.
     */
    readonly receive: (handlers: {
      readonly onRevocation: (revocation: Revocation) => void
      readonly onConnected: Effect.Effect<void>
    }) => Effect.Effect<void>
  } => ({ receive: () => Effect.void })
}) {}
