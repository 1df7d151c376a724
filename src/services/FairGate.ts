import { Deferred, Effect, Exit, FiberId } from "effect"

/**
 * A first-come, first-served gate of `permits`. Effect's `Semaphore` lets a fiber that takes again at once overtake
 * those already waiting, so a busy caller could starve the others; here a released permit passes straight to the
 * longest waiter. Waiting is interruptible and cheap to interrupt in bulk: an interrupted waiter leaves the line in
 * O(1), or passes on a permit it was handed meanwhile, and handing a permit on only schedules the next fiber, so
 * neither releasing nor interrupting ever recurses.
 */
export interface FairGate {
  /** Runs `effect` holding a permit; only the wait for the permit is interruptible beyond `effect` itself. */
  readonly withPermit: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /**
   * Takes a permit. Call it uninterruptibly: `interruptible` is what makes the wait (and only the wait)
   * interruptible, so that between getting the permit and registering its release no interruption slips in.
   */
  readonly take: (
    interruptible: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  ) => Effect.Effect<void>
  readonly release: Effect.Effect<void>
  /** Fibers waiting for a permit. */
  readonly waiting: () => number
}

export const make = (permits: number): FairGate => {
  let free = permits
  const line = new Set<Deferred.Deferred<void>>()
  const handOff = () => {
    const next = line.values().next()
    if (next.done) {
      free++
      return
    }
    line.delete(next.value)
    Deferred.unsafeDone(next.value, Exit.void)
  }
  const release = Effect.sync(handOff)
  const take: FairGate["take"] = (interruptible) =>
    Effect.suspend(() => {
      if (free > 0 && line.size === 0) {
        free--
        return Effect.void
      }
      const turn = Deferred.unsafeMake<void>(FiberId.none)
      line.add(turn)
      return interruptible(Deferred.await(turn)).pipe(
        Effect.onInterrupt(() => Effect.sync(() => line.delete(turn) ? undefined : handOff()))
      )
    })
  return {
    take,
    release,
    withPermit: (effect) =>
      Effect.uninterruptibleMask((restore) =>
        Effect.zipRight(take(restore), Effect.ensuring(restore(effect), release))
      ),
    waiting: () => line.size
  }
}
