/**
 * The inbound rate limit of one socket (protocol.md §5 `rate_limited`, I9): a token bucket holding one second of frames and
 * refilled continuously, so a client may burst up to its rate and then sustain it. A request that costs more than
 * one frame (a subscribe costs its number of topics: each starts a replay) takes as many tokens; one that costs more
 * than the whole bucket is let through only when the bucket is full, and leaves it in debt.
 */

/** A socket's bucket. */
export interface TokenBucket {
  /** Takes `cost` tokens at `now` (ms): 0 when they were taken, else how many ms until they could be. */
  readonly take: (cost: number, now: number) => number
}

/** A full bucket of `perSecond` tokens at `now` (ms). */
export const make = (perSecond: number, now: number): TokenBucket => {
  let tokens = perSecond
  let updatedAt = now
  return {
    take: (cost, at) => {
      tokens = Math.min(perSecond, tokens + (Math.max(0, at - updatedAt) * perSecond) / 1000)
      updatedAt = Math.max(updatedAt, at)
      const needed = Math.min(cost, perSecond)
      if (tokens >= needed) {
        tokens -= cost
        return 0
      }
      return Math.max(1, Math.ceil(((needed - tokens) * 1000) / perSecond))
    }
  }
}
