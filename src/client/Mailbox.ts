/**
 * A bounded mailbox between callbacks (socket events, fibers) and the one fiber that handles them in order. `offer`
 * never waits: a full mailbox refuses, and the caller decides (the socket is closed and resumed from its persisted
 * watermarks, which loses nothing), so memory stays bounded even when the browser delivers frames faster than the
 * client can store them.
 *
 * @since 0.1.0
 */
import * as Micro from "effect/Micro"

/**
 * @since 0.1.0
 */
export interface Mailbox<A> {
  /** Adds a message; false when the mailbox is full. */
  readonly offer: (message: A) => boolean
  /**
   * Adds a message even when the mailbox is full: for the few messages a session's own fibers send (one per topic at
   * most), which must not be lost to a flood of frames.
   */
  readonly force: (message: A) => void
  /** Takes every message there is, waiting for one when there is none. */
  readonly takeAll: Micro.Micro<Array<A>>
}

/**
 * @since 0.1.0
 */
export const make = <A>(capacity: number): Mailbox<A> => {
  let messages: Array<A> = []
  let waiter: ((messages: Array<A>) => void) | undefined
  const deliver = (message: A) => {
    if (waiter === undefined) return false
    const resume = waiter
    waiter = undefined
    resume([message])
    return true
  }
  return {
    offer: (message) => {
      if (deliver(message)) return true
      if (messages.length >= capacity) return false
      messages.push(message)
      return true
    },
    force: (message) => {
      if (!deliver(message)) messages.push(message)
    },
    takeAll: Micro.suspend(() => {
      if (messages.length > 0) {
        const taken = messages
        messages = []
        return Micro.succeed(taken)
      }
      return Micro.async<Array<A>>((resume) => {
        waiter = (taken) => resume(Micro.succeed(taken))
        return Micro.sync(() => {
          waiter = undefined
        })
      })
    })
  }
}
