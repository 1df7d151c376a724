/**
 * The send-buffer gauges (docs/metrics.md), sampled: a socket's unsent bytes change with every write and every drain, so
 * they are read from the sockets once a second instead of being tracked on the send path.
 */
import type { Scope } from "effect"
import { Effect, Schedule } from "effect"
import type { WebSocketServer } from "ws"
import * as Metrics from "../services/Metrics.js"

const interval = "1 second"

/** Samples the sockets of `wss` for the scope. */
export const sample = (wss: WebSocketServer): Effect.Effect<void, never, Scope.Scope> =>
  Effect.sync(() => {
    if (!Metrics.isRecording()) return
    let total = 0
    let max = 0
    for (const ws of wss.clients) {
      total += ws.bufferedAmount
      if (ws.bufferedAmount > max) max = ws.bufferedAmount
    }
    Metrics.record(Metrics.sendBufferBytes, total)
    Metrics.record(Metrics.sendBufferMaxBytes, max)
  }).pipe(Effect.repeat(Schedule.spaced(interval)), Effect.asVoid, Effect.forkScoped, Effect.asVoid)
