/**
 * A load-client process: holds many subscribed Phoenix sockets and counts (and optionally times) the updates they
 * receive, so that the cost of reading frames lands in its own process rather than in the server's or the bench's.
 * Driven by the bench process over IPC (see `clients.ts`).
 */
import WebSocket from "ws"
import { answer } from "./ipc.js"
import { now, timestampKey, topic } from "./workload.js"

/** `count` only counts updates; `latency` also records, per update, its receipt time minus its payload's `t`. */
export type Mode = "count" | "latency"

export interface OpenRequest {
  readonly url: string
  readonly sockets: number
  /** Subscribe from here: the topic's head, so that a fresh socket has nothing to replay. */
  readonly resumeAfter: number
  readonly mode: Mode
}

export interface Report {
  readonly received: number
  /** Update batch frames that carried at least one update. */
  readonly frames: number
  /** Receipt time of the first and last update since the last reset (0 when none). */
  readonly firstAt: number
  readonly lastAt: number
  /** Milliseconds from append to receipt, one per received update (`latency` mode only). */
  readonly latencies: Float64Array
  /** Sockets the server closed after they were subscribed. */
  readonly closed: number
}

export interface ReplayRequest {
  readonly url: string
  readonly replayBatchSize: number
}

export interface ReplayResult {
  /** From sending the subscribe to receiving the batch marked replay_complete. */
  readonly ms: number
  readonly updates: number
  /** Updates whose watermark is not the previous one plus one (a gap, a duplicate or a reordering). */
  readonly violations: number
  readonly lastWatermark: number
}

export type ClientProtocol = {
  readonly open: { readonly request: OpenRequest; readonly response: { readonly opened: number } }
  readonly reset: { readonly request: null; readonly response: null }
  readonly received: { readonly request: null; readonly response: number }
  readonly report: { readonly request: null; readonly response: Report }
  readonly close: { readonly request: null; readonly response: null }
  readonly replay: { readonly request: ReplayRequest; readonly response: ReplayResult }
}

const joinFrame = JSON.stringify(["1", "1", "sync:v1", "phx_join", {}])
const subscribeFrame = (body: object) =>
  JSON.stringify(["1", "2", "sync:v1", "sync:subscribe", { topics: [topic], ...body }])
const heartbeatFrame = JSON.stringify([null, "hb", "phoenix", "heartbeat", {}])

// Frames are counted without parsing them: every update of a batch carries exactly one `"t":` (its payload's), and
// the event name sits in the frame's first bytes. JSON.parse of every frame would make the clients, not the server,
// the bottleneck of a 2-core machine.
const updateBatchEvent = Buffer.from("\"sync:update_batch\"")
const tKey = Buffer.from(timestampKey)
const comma = 0x2c
const closingBrace = 0x7d

let mode: Mode = "count"
let received = 0
let frames = 0
let firstAt = 0
let lastAt = 0
let closed = 0
let latencies = new Float64Array(1 << 16)
let latencyCount = 0
let sockets: Array<WebSocket> = []

const recordLatency = (ms: number) => {
  if (latencyCount === latencies.length) {
    const grown = new Float64Array(latencies.length * 2)
    grown.set(latencies)
    latencies = grown
  }
  latencies[latencyCount++] = ms
}

const onFrame = (data: Buffer) => {
  if (data.subarray(0, 80).indexOf(updateBatchEvent) === -1) return
  const at = now()
  let pos = data.indexOf(tKey)
  if (pos === -1) return
  frames++
  while (pos !== -1) {
    received++
    const start = pos + tKey.length
    let end = start
    while (end < data.length && data[end] !== comma && data[end] !== closingBrace) end++
    if (mode === "latency") recordLatency(at - Number(data.toString("latin1", start, end)))
    pos = data.indexOf(tKey, end)
  }
  if (firstAt === 0) firstAt = at
  lastAt = at
}

const toBuffer = (data: WebSocket.RawData): Buffer =>
  Buffer.isBuffer(data) ? data : Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)

/** One socket, joined and subscribed; resolves once its replay is complete. */
const connect = (url: string, resumeAfter: number) =>
  new Promise<WebSocket>((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    let ready = false
    const fail = (error: Error) => {
      clearTimeout(timer)
      ws.terminate()
      reject(error)
    }
    const timer = setTimeout(() => fail(new Error("socket not subscribed after 60 s")), 60_000)
    ws.on("open", () => {
      ws.send(joinFrame)
      ws.send(subscribeFrame(resumeAfter > 0 ? { resume_after: [{ topic, watermark: resumeAfter }] } : {}))
    })
    ws.on("message", (raw) => {
      const data = toBuffer(raw)
      if (ready) return onFrame(data)
      const [, ref, , event, payload] = JSON.parse(data.toString())
      if (event === "phx_reply" && payload.status !== "ok") {
        return fail(new Error(`request ${ref} refused: ${JSON.stringify(payload.response)}`))
      }
      if (event !== "sync:update_batch") return
      onFrame(data)
      if (payload.replay_complete === true) {
        ready = true
        clearTimeout(timer)
        resolve(ws)
      }
    })
    ws.on("error", (error) => {
      if (!ready) fail(error)
    })
    ws.on("close", (code) => {
      if (ready) closed++
      else fail(new Error(`socket closed (${code}) before it was subscribed`))
    })
  })

/** Opens `count` sockets, a bounded number at a time so as not to overflow the server's accept backlog. */
const open = async ({ mode: requested, resumeAfter, sockets: count, url }: OpenRequest) => {
  mode = requested
  let next = 0
  const opened: Array<WebSocket> = []
  const worker = async () => {
    while (next < count) {
      next++
      opened.push(await connect(url, resumeAfter))
    }
  }
  try {
    await Promise.all(Array.from({ length: Math.min(count, 50) }, worker))
  } catch (error) {
    opened.forEach((ws) => ws.terminate())
    throw error
  }
  for (const socket of opened) sockets.push(socket)
  return { opened: opened.length }
}

const reset = () => {
  received = 0
  frames = 0
  firstAt = 0
  lastAt = 0
  closed = 0
  latencyCount = 0
  return null
}

const close = () => {
  for (const ws of sockets) {
    // ours to close: not counted as closed by the server
    ws.removeAllListeners("close")
    ws.terminate()
  }
  sockets = []
  return reset()
}

/** One socket replays the topic from the start; checks the watermarks come one after another. */
const replay = ({ replayBatchSize, url }: ReplayRequest) =>
  new Promise<ReplayResult>((resolve, reject) => {
    const ws = new WebSocket(url, { perMessageDeflate: false })
    const timer = setTimeout(() => {
      ws.terminate()
      reject(new Error("replay not complete after 120 s"))
    }, 120_000)
    let sentAt = 0
    let updates = 0
    let violations = 0
    let last = 0
    ws.on("open", () => ws.send(joinFrame))
    ws.on("message", (raw) => {
      const [, ref, , event, payload] = JSON.parse(toBuffer(raw).toString())
      if (event === "phx_reply" && payload.status !== "ok") {
        clearTimeout(timer)
        ws.terminate()
        return reject(new Error(`request ${ref} refused: ${JSON.stringify(payload.response)}`))
      }
      if (event === "phx_reply" && ref === "1") {
        sentAt = now()
        return ws.send(subscribeFrame({ replay_batch_size: replayBatchSize }))
      }
      if (event !== "sync:update_batch") return
      for (const update of payload.updates as Array<{ watermark: number }>) {
        if (update.watermark !== last + 1) violations++
        last = update.watermark
        updates++
      }
      if (payload.replay_complete === true) {
        const ms = now() - sentAt
        clearTimeout(timer)
        ws.terminate()
        resolve({ ms, updates, violations, lastWatermark: last })
      }
    })
    ws.on("error", (error) => {
      clearTimeout(timer)
      reject(error)
    })
  })

// The server closes sockets that send nothing for a minute; a scenario draining a backlog can take that long.
setInterval(() => {
  for (const ws of sockets) if (ws.readyState === WebSocket.OPEN) ws.send(heartbeatFrame)
}, 20_000).unref()

answer<ClientProtocol>({
  open,
  reset,
  received: () => received,
  report: () => ({ received, frames, firstAt, lastAt, latencies: latencies.slice(0, latencyCount), closed }),
  close,
  replay
})
