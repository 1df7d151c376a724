import { Duration, Effect, Fiber } from "effect"

/**
 * Runs a long operation with a line on stderr saying what runs and for how long, redrawn in place every half
 * second, when stderr is a terminal; scripts and logs (not a terminal) get nothing but the command's result.
 */
export const withProgress = <A, E, R>(label: string, effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> => {
  if (process.stderr.isTTY !== true) return effect
  const started = Date.now()
  const draw = Effect.sync(() => {
    const seconds = Duration.format(Duration.seconds(Math.floor((Date.now() - started) / 1000)))
    process.stderr.write(`\r\x1b[K${label}… ${seconds}`)
  })
  const clear = Effect.sync(() => process.stderr.write("\r\x1b[K"))
  return Effect.acquireUseRelease(
    // the first draw waits a moment: a quick operation shows nothing at all
    Effect.forkDaemon(Effect.forever(Effect.zipRight(Effect.sleep("500 millis"), draw))),
    () => effect,
    (fiber) => Effect.zipRight(Fiber.interrupt(fiber), clear)
  )
}
