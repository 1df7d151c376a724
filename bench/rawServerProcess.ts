/**
 * The raw baseline server: plain `ws`, no Effect, no database. It speaks just enough of the sync:v1 channel for the
 * bench clients (join, subscribe with an empty replay, heartbeats) and broadcasts update batch frames of exactly
 * Khala's JSON shape, each built once and sent as the same buffer to every socket. Driven over IPC (see
 * `rawServer.ts`).
 */
import { createHash } from "node:crypto"
import type { AddressInfo } from "node:net"
import { WebSocket, WebSocketServer } from "ws"
import { answer } from "./ipc.js"
import { benchPayload, now, topic } from "./workload.js"

export interface FloodResult {
  /** Updates sent to each socket. */
  readonly updates: number
  readonly startedAt: number
}

export interface CoalesceResult {
  /** Updates generated, each sent to every socket. */
  readonly generated: number
}

export type RawServerProtocol = {
  readonly listen: { readonly request: null; readonly response: { readonly port: number } }
  readonly flood: {
    readonly request: { readonly seconds: number; readonly updatesPerFrame: number }
    readonly response: FloodResult
  }
  readonly coalesce: {
    readonly request: { readonly rate: number; readonly seconds: number; readonly tickMs: number }
    readonly response: CoalesceResult
  }
}

/** What Khala does: a socket with this much unsent waits, and so would a broadcast that did not. */
const pauseAboveBytes = 1024 * 1024

/** Subscribed sockets by join ref, which is part of every frame sent to them. */
const subscribed = new Map<string, Set<WebSocket>>()
let watermark = 0

const reply = (joinRef: unknown, ref: unknown, frameTopic: unknown, response: unknown) =>
  JSON.stringify([joinRef, ref, frameTopic, "phx_reply", { status: "ok", response }])

const watermarkList = (w: number) => `[{"topic":${JSON.stringify(topic)},"watermark":${w}}]`

const updateBatch = (joinRef: string, updates: ReadonlyArray<string>, through: number) =>
  `[${JSON.stringify(joinRef)},null,"sync:v1","sync:update_batch",{"updates":[${updates.join(",")}],` +
  `"replay_complete":true,"head_watermarks":${watermarkList(through)},"watermarks":${watermarkList(through)}}]`

/** The text of one new update, keys in Khala's order, appended now. */
const nextUpdate = () => {
  const w = ++watermark
  const payload = JSON.stringify(benchPayload(w, now()))
  const hash = createHash("sha256").update(payload).digest("hex")
  return `{"topic":${JSON.stringify(topic)},"doc_key":"doc-${w}","doc_version":1,"payload":${payload},` +
    `"payload_hash":"sha256:${hash}","watermark":${w},"hydration_required":false}`
}

const broadcast = (updates: ReadonlyArray<string>) => {
  for (const [joinRef, sockets] of subscribed) {
    const frame = Buffer.from(updateBatch(joinRef, updates, watermark))
    for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(frame, { binary: false })
  }
}

const anySocketBacklogged = () => {
  for (const sockets of subscribed.values()) {
    for (const ws of sockets) if (ws.bufferedAmount > pauseAboveBytes) return true
  }
  return false
}

const onConnection = (ws: WebSocket) => {
  let joinRef: string | undefined
  const leave = () => {
    if (joinRef !== undefined) subscribed.get(joinRef)?.delete(ws)
  }
  ws.on("message", (data) => {
    const [frameJoinRef, ref, frameTopic, event] = JSON.parse(data.toString())
    if (frameTopic === "phoenix") return ws.send(reply(null, ref, frameTopic, {}))
    if (event === "phx_join") {
      leave()
      joinRef = String(frameJoinRef ?? ref)
      const response = { subscription_id: "raw", allowed_topics: [topic], current_watermarks: [] }
      return ws.send(reply(joinRef, ref, frameTopic, response))
    }
    if (event === "sync:subscribe" && joinRef !== undefined) {
      ws.send(reply(joinRef, ref, frameTopic, { subscription_id: "raw", topics: [topic], current_watermarks: [] }))
      ws.send(updateBatch(joinRef, [], watermark))
      const sockets = subscribed.get(joinRef) ?? new Set()
      subscribed.set(joinRef, sockets.add(ws))
    }
  })
  ws.on("close", leave)
  ws.on("error", () => ws.terminate())
}

const listen = () =>
  new Promise<{ port: number }>((resolve, reject) => {
    const wss = new WebSocketServer({ host: "127.0.0.1", port: 0, perMessageDeflate: false })
    wss.on("connection", onConnection)
    wss.once("error", reject)
    wss.once("listening", () => resolve({ port: (wss.address() as AddressInfo).port }))
  })

/** Broadcasts frames of `updatesPerFrame` new updates for `seconds`, as fast as the sockets drain. */
const flood = ({ seconds, updatesPerFrame }: { seconds: number; updatesPerFrame: number }) =>
  new Promise<FloodResult>((resolve) => {
    const startedAt = now()
    const deadline = startedAt + seconds * 1000
    let updates = 0
    const step = () => {
      if (now() >= deadline) return resolve({ updates, startedAt })
      if (anySocketBacklogged()) return setTimeout(step, 1)
      broadcast(Array.from({ length: updatesPerFrame }, nextUpdate))
      updates += updatesPerFrame
      // back to the event loop after each frame, so that sockets flush and answer
      setImmediate(step)
    }
    step()
  })

/**
 * Generates `rate` updates per second for `seconds`, each stamped when generated, and every `tickMs` broadcasts one
 * frame of those generated since the last tick: the floor of a server that wakes on a timer.
 */
const coalesce = ({ rate, seconds, tickMs }: { rate: number; seconds: number; tickMs: number }) =>
  new Promise<CoalesceResult>((resolve) => {
    const startedAt = now()
    const total = Math.round(rate * seconds)
    let generated = 0
    let pending: Array<string> = []
    const generate = () => {
      const due = Math.min(total, Math.floor(((now() - startedAt) * rate) / 1000) + 1)
      for (; generated < due; generated++) pending.push(nextUpdate())
      if (generated < total) setTimeout(generate, startedAt + (generated * 1000) / rate - now())
    }
    const tick = setInterval(() => {
      if (pending.length > 0) broadcast(pending)
      pending = []
      if (generated === total) {
        clearInterval(tick)
        resolve({ generated })
      }
    }, tickMs)
    generate()
  })

answer<RawServerProtocol>({ listen, flood, coalesce })
