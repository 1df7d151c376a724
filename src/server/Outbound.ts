/**
 * The send path of one socket, with backpressure (protocol.md §5, I9). While the socket's unsent bytes are over its limit,
 * its senders wait, without polling: the connection's `drain` event (all written data handed to the kernel) wakes
 * them. The live fast path never waits: it refuses, and the subscription catches up from the journal through `send`,
 * or waits in the hub before reading (`awaitRoom` as the subscription's `awaitCapacity`). A socket over its limit for
 * the slow-consumer timeout is closed with a resumable code.
 */
import { Effect, Option } from "effect"
import type { Duplex } from "node:stream"
import { WebSocket } from "ws"
import type { ServerSettings } from "./ServerConfig.js"

export interface Outbound {
  /** Whether the unsent bytes are over the limit. */
  readonly overLimit: () => boolean
  /**
   * Waits until the socket has room (or is no longer open); past the slow-consumer timeout it closes the socket and
   * interrupts the waiter.
   */
  readonly awaitRoom: Effect.Effect<void>
  /** Sends a text frame once the socket has room. */
  readonly send: (text: string) => Effect.Effect<void>
  /** Sends text frames at once if the socket has room, else sends nothing and answers false. */
  readonly offer: (frames: ReadonlyArray<Uint8Array>) => boolean
}

/** How often a waiter looks again when the connection will emit no `drain`: its unsent bytes are below its own mark. */
const recheckWithoutDrain = "10 millis"

export const make = (options: {
  readonly ws: WebSocket
  /** The connection under the WebSocket: its `drain` tells that the unsent bytes were handed to the kernel. */
  readonly connection: Duplex
  readonly settings: ServerSettings
  /** Closes the socket as a slow consumer: its close frame waits behind the unsent data. */
  readonly closeSlowConsumer: Effect.Effect<void>
}) =>
  Effect.gen(function*() {
    const { connection, settings, ws } = options
    const open = () => ws.readyState === WebSocket.OPEN
    const overLimit = () => ws.bufferedAmount > settings.sendBufferBytes

    // One latch per socket, whatever the number of its waiters: closed while over the limit, opened by `drain`.
    const room = yield* Effect.makeLatch(true)
    const wake = () => room.unsafeOpen()
    yield* Effect.acquireRelease(
      Effect.sync(() => {
        connection.on("drain", wake)
        connection.on("close", wake)
      }),
      () =>
        Effect.sync(() => {
          connection.off("drain", wake)
          connection.off("close", wake)
        })
    )

    const untilRoom: Effect.Effect<void> = Effect.suspend(() => {
      if (!open() || !overLimit()) return Effect.void
      // `drain` comes only after a write found the connection's own buffer full; below that mark, look again soon
      if (!connection.writableNeedDrain) return Effect.zipRight(Effect.sleep(recheckWithoutDrain), untilRoom)
      room.unsafeClose()
      return Effect.zipRight(room.await, untilRoom)
    })

    const awaitRoom: Effect.Effect<void> = Effect.suspend(() =>
      !open() || !overLimit()
        ? Effect.void
        : Effect.flatMap(
          Effect.timeoutOption(untilRoom, settings.slowConsumerTimeout),
          Option.match({
            onSome: () => Effect.void,
            onNone: () => Effect.zipRight(options.closeSlowConsumer, Effect.interrupt)
          })
        )
    )

    const send = (text: string) =>
      Effect.zipRight(
        awaitRoom,
        Effect.sync(() => {
          if (open()) ws.send(text)
        })
      )

    // A live batch goes out whole when the socket is under its limit: its frames are shared by every socket of the
    // batch's topic and org, so holding them costs one copy per process, not one per socket.
    const offer = (frames: ReadonlyArray<Uint8Array>) => {
      if (!open() || overLimit()) return false
      for (const frame of frames) ws.send(frame, { binary: false })
      return true
    }

    return { overLimit, awaitRoom, send, offer } satisfies Outbound
  })
