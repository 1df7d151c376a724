/** The value at percentile `p` (0–100) of ascending `sorted`, by the nearest-rank method; NaN when empty. */
export const percentile = (sorted: ArrayLike<number>, p: number): number => {
  if (sorted.length === 0) return NaN
  const rank = Math.ceil((p / 100) * sorted.length)
  return sorted[Math.min(sorted.length - 1, Math.max(0, rank - 1))]!
}

/** p50, p95 and p99 of a set of samples, in their unit. */
export const latencySummary = (samples: Float64Array) => {
  const sorted = Float64Array.from(samples).sort()
  return { p50: percentile(sorted, 50), p95: percentile(sorted, 95), p99: percentile(sorted, 99), count: sorted.length }
}

/** Concatenates sample arrays received from several processes. */
export const concatSamples = (parts: ReadonlyArray<Float64Array>): Float64Array => {
  const all = new Float64Array(parts.reduce((n, part) => n + part.length, 0))
  let offset = 0
  for (const part of parts) {
    all.set(part, offset)
    offset += part.length
  }
  return all
}
