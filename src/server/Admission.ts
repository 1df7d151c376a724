/**
 * What one server admits beyond its socket total (protocol.md §2, §10, I9): browser upgrades only from allowed
 * origins, at most so many sockets per org and per principal (`sub` within its org), and a subscribe rate per
 * principal shared by its sockets, so that one tenant or one runaway client cannot take a server's sockets or its
 * replays from the others. The counts are this server's: a deployment's limit is the per-server one times its servers.
 */
import * as RateLimit from "./RateLimit.js"

/** The limits, from the server's settings. */
export interface AdmissionLimits {
  readonly maxSocketsPerOrg: number
  readonly maxSocketsPerPrincipal: number
  /** Topic subscriptions per second per principal, all its sockets together; a burst of one second's worth. */
  readonly principalSubscribesPerSecond: number
  /** Origins a browser may open a socket from; `"*"` for any. Requests without `Origin` (not a browser) pass. */
  readonly socketOrigins: ReadonlyArray<string> | "*"
}

/** An upgrade refused after its token verified: answered with this HTTP status (and `Retry-After` when set). */
export interface Refusal {
  readonly status: 403 | 429
  readonly message: string
  readonly retryAfterSeconds?: number
}

/** A socket's place, held until it ends. */
export interface Ticket {
  /** Charges `cost` topic subscriptions to the principal at `now` (ms): 0 when taken, else ms until they could be. */
  readonly subscribeRate: (cost: number, now: number) => number
  /** Gives the place back; later calls do nothing. */
  readonly release: () => void
}

export interface Admission {
  /** Whether an upgrade with this `Origin` header may proceed (checked before its token). */
  readonly originAllowed: (origin: string | undefined) => boolean
  /** Takes a place for a verified principal's socket, or says why there is none. */
  readonly admit: (principal: { readonly subject: string; readonly orgId: string }, now: number) =>
    | { readonly _tag: "Admitted"; readonly ticket: Ticket }
    | { readonly _tag: "Refused"; readonly refusal: Refusal }
}

interface PrincipalEntry {
  sockets: number
  readonly bucket: RateLimit.TokenBucket
}

/** Seconds a refused client waits: enough for one of its own sockets (or its org's) to end. */
const retryAfterSeconds = 5

export const make = (limits: AdmissionLimits): Admission => {
  const origins = limits.socketOrigins === "*" ? "*" : new Set(limits.socketOrigins)
  const orgs = new Map<string, number>()
  // Entries live while the principal holds a socket: the maps are bounded by the sockets held (I9).
  const principals = new Map<string, PrincipalEntry>()

  return {
    originAllowed: (origin) => origin === undefined || origins === "*" || origins.has(origin),
    admit: (principal, now) => {
      const orgCount = orgs.get(principal.orgId) ?? 0
      if (orgCount >= limits.maxSocketsPerOrg) {
        return {
          _tag: "Refused",
          refusal: { status: 429, message: "this org holds its most sockets on this server", retryAfterSeconds }
        }
      }
      const key = `${principal.orgId}\u0000${principal.subject}`
      const existing = principals.get(key)
      if (existing !== undefined && existing.sockets >= limits.maxSocketsPerPrincipal) {
        return {
          _tag: "Refused",
          refusal: { status: 429, message: "this principal holds its most sockets on this server", retryAfterSeconds }
        }
      }
      const entry = existing ?? { sockets: 0, bucket: RateLimit.make(limits.principalSubscribesPerSecond, now) }
      entry.sockets++
      principals.set(key, entry)
      orgs.set(principal.orgId, orgCount + 1)
      let released = false
      return {
        _tag: "Admitted",
        ticket: {
          subscribeRate: (cost, at) => entry.bucket.take(cost, at),
          release: () => {
            if (released) return
            released = true
            entry.sockets--
            if (entry.sockets === 0) principals.delete(key)
            const left = (orgs.get(principal.orgId) ?? 1) - 1
            if (left === 0) orgs.delete(principal.orgId)
            else orgs.set(principal.orgId, left)
          }
        }
      }
    }
  }
}
