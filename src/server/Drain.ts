/**
 * Draining a node before it stops (protocol.md §5): it stops taking sockets (upgrades get 503, `/readyz` says not
 * ready, so a load balancer sends new clients elsewhere), then closes the sockets it holds with 1001 (going away) at
 * times spread at random over the drain window. Clients reconnect to another node and resume from their watermarks;
 * spreading the closes keeps them from all reconnecting, and replaying, on the next node at the same instant.
 *
 * The node's sockets are tracked here from their upgrade to their close; a socket opened while draining (its upgrade
 * was being authorized when the drain began) is closed at once.
 */
import { Clock, Context, Deferred, Duration, Effect, Exit, Layer, Random } from "effect"
import type { Scope } from "effect"
import { WebSocket } from "ws"
import { ServerConfig } from "./ServerConfig.js"

/** How long a socket closed by the drain may take to answer the close handshake before it is cut off. */
const closeGrace = Duration.seconds(1)

/** The node's drain. */
export class Drain extends Context.Tag("khala/Drain")<Drain, {
  /** Whether the node is draining (or drained): it takes no new sockets and is not ready. */
  readonly draining: Effect.Effect<boolean>
  /** Sockets held now. */
  readonly sockets: Effect.Effect<number>
  /**
   * Tracks a socket for the scope (its lifetime): the drain closes it. Its open and its close (with the code) are
   * logged at debug level.
   */
  readonly track: (ws: WebSocket) => Effect.Effect<void, never, Scope.Scope>
  /**
   * Drains: stops taking sockets, closes every socket held with 1001 at a random time within the drain window, and
   * waits until they are all closed (a peer that does not answer the close is cut off soon after). Running it again
   * waits for the same drain.
   */
  readonly run: Effect.Effect<void>
}>() {}

/** Closes with 1001; a peer that does not answer the close handshake (it stopped reading) is cut off after a grace. */
const goAway = (ws: WebSocket) => {
  if (ws.readyState === WebSocket.CLOSED) return
  if (ws.readyState !== WebSocket.CLOSING) ws.close(1001, "server draining")
  const cutOff = setTimeout(() => ws.terminate(), Duration.toMillis(closeGrace))
  cutOff.unref()
  ws.once("close", () => clearTimeout(cutOff))
}

/** Makes the drain of a node whose sockets are closed over `window`. */
export const make = (window: Duration.Duration) =>
  Effect.gen(function*() {
    const held = new Set<WebSocket>()
    let draining = false
    const drained = yield* Deferred.make<void>()
    // completed once the drain has begun and the last socket has closed
    const empty = yield* Deferred.make<void>()
    const checkEmpty = () => {
      if (draining && held.size === 0) Deferred.unsafeDone(empty, Exit.void)
    }

    const track = (ws: WebSocket) =>
      Effect.gen(function*() {
        held.add(ws)
        let code: number | undefined
        const onClose = (closeCode: number) => (code = closeCode)
        ws.once("close", onClose)
        yield* Effect.logDebug("socket opened")
        yield* Effect.addFinalizer(() =>
          Effect.gen(function*() {
            ws.off("close", onClose)
            held.delete(ws)
            checkEmpty()
            yield* Effect.logDebug("socket closed").pipe(Effect.annotateLogs("code", code ?? "none"))
          })
        )
        if (draining) goAway(ws)
      })

    const drain = Effect.gen(function*() {
      const sockets = [...held]
      const windowMs = Duration.toMillis(window)
      const started = yield* Clock.currentTimeMillis
      yield* Effect.logInfo("draining: taking no new sockets; closing the sockets held over the drain window").pipe(
        Effect.annotateLogs({ sockets: sockets.length, windowMs })
      )
      // one fiber walks the sockets in order of their random close times
      const times = yield* Effect.forEach(sockets, (ws) =>
        Effect.map(Random.nextRange(0, windowMs), (at) => ({ at, ws })))
      times.sort((a, b) =>
        a.at - b.at
      )
      for (const { at, ws } of times) {
        const wait = started + at - (yield* Clock.currentTimeMillis)
        if (wait > 0) yield* Effect.sleep(Duration.millis(wait))
        goAway(ws)
      }
      checkEmpty()
      // every socket is closed or cut off by now plus the grace; the margin covers a finalizer still running
      const allClosed = yield* Deferred.await(empty).pipe(
        Effect.timeoutTo({
          duration: Duration.sum(closeGrace, Duration.seconds(2)),
          onSuccess: () => true,
          onTimeout: () => false
        })
      )
      const elapsedMs = (yield* Clock.currentTimeMillis) - started
      yield* Effect.logInfo(allClosed ? "drained" : "drained; some sockets did not close in time").pipe(
        Effect.annotateLogs({ sockets: sockets.length, remaining: held.size, elapsedMs })
      )
    })

    const run = Effect.suspend(() => {
      if (draining) return Deferred.await(drained)
      draining = true
      return drain.pipe(Effect.ensuring(Deferred.done(drained, Exit.void)))
    })

    return Drain.of({
      draining: Effect.sync(() => draining),
      sockets: Effect.sync(() => held.size),
      track,
      run
    })
  })

/** The drain of a node, over the server's drain window (`ServerConfig`). */
export const layer: Layer.Layer<Drain, never, ServerConfig> = Layer.effect(
  Drain,
  Effect.flatMap(ServerConfig, (settings) => make(settings.drainWindow))
)
