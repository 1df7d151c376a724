/**
 * What every delivery scenario publishes and how it timestamps it, shared by the bench process, the raw baseline
 * server and the client processes (so plain TypeScript, no Effect).
 */

/** The topic every scenario publishes to and subscribes to. */
export const topic = "runtime.run_summaries"

/** The organisation of every published update and of the bench token. */
export const orgId = "org_bench"

/**
 * Milliseconds since the epoch with sub-millisecond resolution. Every process on the machine reads the same clock,
 * so a timestamp taken in one process can be subtracted from one taken in another.
 */
export const now = () => performance.timeOrigin + performance.now()

const summary = "run completed: 42 steps, 3 tool calls, 1 retry; output written to the workspace and indexed"
  .padEnd(120)

/**
 * A run-summary-like document of about 200 bytes. `t` is when it was appended; it is the only key named `t` in a
 * frame, which is what lets clients find and count updates without parsing whole frames.
 */
export const benchPayload = (i: number, t: number) => ({ t, i, status: "completed", steps: 42, summary })

/** The JSON text of `"t":`, whose occurrences in an update batch frame are its updates. */
export const timestampKey = "\"t\":"
