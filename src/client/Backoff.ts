/**
 * Reconnect delays: full jitter (a uniformly random delay below an exponentially growing cap), so that many clients
 * dropped at the same instant (a server restart) come back spread out instead of in synchronized bursts; the server's
 * `retry_after_ms` and close code set a floor under it.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export interface BackoffOptions {
  /** Cap of the first retry's delay. Default 500 ms. */
  readonly baseMs?: number | undefined
  /** Largest cap. Default 30 s. */
  readonly maxMs?: number | undefined
  /** A connection that stayed joined this long was healthy: the next failure starts the backoff over. Default 5 s. */
  readonly stableAfterMs?: number | undefined
}

/** Close codes the server uses (protocol.md §5). */
export const CloseCode = {
  normal: 1000,
  goingAway: 1001,
  abnormal: 1006,
  policy: 1008,
  tryAgainLater: 1013
} as const

/**
 * Floor of the delay after a close with `1013 try again later` and no `retry_after_ms`: the server is shedding load
 * (a slow consumer), so coming straight back would only repeat it.
 *
 * @since 0.1.0
 */
export const tryAgainLaterFloorMs = 2000

/**
 * The delay before retry number `attempt` (0 for the first retry after a failure): the floor the server asked for,
 * plus a uniformly random part below `min(maxMs, baseMs * 2^attempt)`. `random` returns a number in [0, 1).
 *
 * @since 0.1.0
 */
export const reconnectDelay = (
  attempt: number,
  options: BackoffOptions,
  failure: { readonly retryAfterMs?: number | undefined; readonly closeCode?: number | undefined },
  random: () => number
): number => {
  const base = options.baseMs ?? 500
  const max = options.maxMs ?? 30_000
  const cap = Math.min(max, base * 2 ** Math.min(attempt, 30))
  const floor = failure.retryAfterMs ?? (failure.closeCode === CloseCode.tryAgainLater ? tryAgainLaterFloorMs : 0)
  return Math.round(floor + random() * cap)
}
