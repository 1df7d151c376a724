/**
 * The official `phoenix` JavaScript client, unmodified, wrapped for the end-to-end tests: connect (token param or
 * the `authToken` subprotocol option), join `sync:v1`, push with replies, and every push of the channel recorded
 * so tests can wait for and inspect them. The scope disconnects the socket.
 */
import { Duration, Effect } from "effect"
import type { Scope } from "effect"
import type { Channel } from "phoenix"
import { Socket } from "phoenix"
import WebSocket from "ws"
import type { UpdateBatch, UpdateJson } from "../../src/protocol/UpdateBatch.js"
import type { TopicWatermark } from "../../src/protocol/Watermark.js"

export type { TopicWatermark, UpdateBatch, UpdateJson }

export interface Reply {
  readonly status: "ok" | "error" | "timeout"
  readonly response: any
}

export interface ConnectOptions {
  readonly port: number
  /** Sent as the `token` query parameter. */
  readonly token?: string
  /** Sent with the phoenix client's `authToken` option (subprotocols). */
  readonly authToken?: string
  /** The `phx_join` payload of `sync:v1` (`client_build_id`, `protocol_version`, ...). Default `{}`. */
  readonly joinParams?: object
  /** How long to wait for the socket to open. Default 10 s. */
  readonly timeoutMs?: number
}

export interface SyncClient {
  readonly socket: Socket
  readonly channel: Channel
  /** Every `sync:update_batch` push, in arrival order. */
  readonly batches: Array<UpdateBatch>
  /** Every `sync:error` push. */
  readonly errors: Array<any>
  /** Every `sync:heartbeat` push. */
  readonly heartbeats: Array<{ readonly watermarks: ReadonlyArray<TopicWatermark> }>
  /** Close events of the socket. */
  readonly closes: Array<{ readonly code: number; readonly reason: string }>
  /** The negotiated WebSocket subprotocol of the current connection. */
  readonly protocol: () => string | undefined
  readonly join: (timeoutMs?: number) => Effect.Effect<Reply>
  readonly push: (event: string, payload: object, timeoutMs?: number) => Effect.Effect<Reply>
  readonly subscribe: (payload: object) => Effect.Effect<Reply>
  readonly heartbeat: Effect.Effect<Reply>
  /** All updates received so far (optionally of one topic), in arrival order. */
  readonly updates: (topic?: string) => Array<UpdateJson>
  /** The watermarks of `updates(topic)`. */
  readonly watermarks: (topic?: string) => Array<number>
  /**
   * The watermark a client persists for the topic after the batches received so far: the latest batch's
   * `watermarks` entry (which moves past rows of other orgs), else its last update's watermark.
   */
  readonly persisted: (topic: string, batches?: ReadonlyArray<UpdateBatch>) => number | undefined
  /** Waits until the topic's updates reach the watermark. */
  readonly waitForWatermark: (topic: string, watermark: number, timeoutMs?: number) => Effect.Effect<void>
  /** Waits for a batch with `replay_complete: true` that carries the topic (its updates or head). */
  readonly waitForReplayComplete: (topic: string, timeoutMs?: number) => Effect.Effect<UpdateBatch>
  /** Disconnects now (clean close, no reconnect); resolves once closed or after 3 s. */
  readonly disconnect: Effect.Effect<void>
}

/** Polls `predicate` every 10 ms; dies with the label (and `detail`) when it does not hold within the timeout. */
export const waitUntil = (
  label: string,
  predicate: () => boolean,
  options: { readonly timeoutMs?: number | undefined; readonly detail?: (() => unknown) | undefined } = {}
): Effect.Effect<void> =>
  Effect.gen(function*() {
    const deadline = Date.now() + (options.timeoutMs ?? 20_000)
    while (!predicate()) {
      if (Date.now() > deadline) {
        const detail = options.detail === undefined ? "" : `\n${JSON.stringify(options.detail()).slice(0, 4000)}`
        return yield* Effect.die(new Error(`timed out waiting for ${label}${detail}`))
      }
      yield* Effect.sleep(Duration.millis(10))
    }
  })

/** A batch in a line: its updates' watermark range, flags and reported watermarks (for failure messages). */
export const summary = (b: UpdateBatch) => ({
  n: b.updates.length,
  from: b.updates[0]?.watermark,
  to: b.updates.at(-1)?.watermark,
  replay_complete: b.replay_complete,
  head: b.head_watermarks,
  through: b.watermarks
})

const pushReply = (push: { receive: (status: any, cb: (r?: any) => any) => any }) =>
  Effect.async<Reply>((resume) => {
    push
      .receive("ok", (response: any) => resume(Effect.succeed({ status: "ok", response })))
      .receive("error", (response: any) => resume(Effect.succeed({ status: "error", response })))
      .receive("timeout", () => resume(Effect.succeed({ status: "timeout", response: undefined })))
  })

const disconnect = (socket: Socket) =>
  Effect.async<void>((resume) => {
    socket.disconnect(() => resume(Effect.void))
  }).pipe(Effect.timeout("3 seconds"), Effect.ignore)

/** Connects (without joining) and waits until the socket is open; the scope disconnects it. */
export const connect = (options: ConnectOptions): Effect.Effect<SyncClient, Error, Scope.Scope> =>
  Effect.acquireRelease(
    Effect.async<SyncClient, Error>((resume) => {
      const socket = new Socket(`ws://127.0.0.1:${options.port}/socket`, {
        transport: WebSocket as any,
        ...(options.token !== undefined ? { params: { token: options.token } } : {}),
        ...(options.authToken !== undefined ? { authToken: options.authToken } : {}),
        // reconnect quickly in tests that restart servers; the tests disconnect explicitly anyway
        reconnectAfterMs: () => 200,
        rejoinAfterMs: () => 200
      })
      const channel = socket.channel("sync:v1", { ...options.joinParams })
      const batches: Array<UpdateBatch> = []
      const errors: Array<any> = []
      const heartbeats: Array<{ watermarks: ReadonlyArray<TopicWatermark> }> = []
      const closes: Array<{ code: number; reason: string }> = []
      channel.on("sync:update_batch", (payload) => void batches.push(payload))
      channel.on("sync:error", (payload) => void errors.push(payload))
      channel.on("sync:heartbeat", (payload) => void heartbeats.push(payload))
      socket.onClose((event: any) => void closes.push({ code: event?.code, reason: event?.reason }))

      const updates = (topic?: string) =>
        batches.flatMap((b) => b.updates).filter((u) => topic === undefined || u.topic === topic)
      const persisted = (topic: string, from: ReadonlyArray<UpdateBatch> = batches) => {
        let result: number | undefined
        for (const batch of from) {
          const last = batch.updates.filter((u) => u.topic === topic).at(-1)?.watermark
          const through = batch.watermarks?.find((w) => w.topic === topic)?.watermark
          const next = Math.max(last ?? -1, through ?? -1)
          if (next >= 0 && (result === undefined || next > result)) result = next
        }
        return result
      }
      const client: SyncClient = {
        socket,
        channel,
        batches,
        errors,
        heartbeats,
        closes,
        protocol: () => (socket as any).conn?.protocol,
        join: (timeoutMs = 10_000) => pushReply(channel.join(timeoutMs)),
        push: (event, payload, timeoutMs = 10_000) => pushReply(channel.push(event, payload, timeoutMs)),
        subscribe: (payload) => pushReply(channel.push("sync:subscribe", payload, 10_000)),
        heartbeat: Effect.suspend(() => pushReply(channel.push("sync:heartbeat", {}, 30_000))),
        updates,
        watermarks: (topic) => updates(topic).map((u) => u.watermark),
        persisted,
        waitForWatermark: (topic, watermark, timeoutMs) =>
          waitUntil(
            `${topic} through watermark ${watermark}`,
            () => updates(topic).some((u) => u.watermark >= watermark),
            { timeoutMs, detail: () => ({ received: updates(topic).map((u) => u.watermark), errors }) }
          ),
        waitForReplayComplete: (topic, timeoutMs) =>
          Effect.gen(function*() {
            const carries = (b: UpdateBatch) =>
              b.replay_complete &&
              (b.updates.some((u) => u.topic === topic) || b.head_watermarks.some((h) => h.topic === topic))
            yield* waitUntil(`replay_complete of ${topic}`, () => batches.some(carries), {
              timeoutMs,
              detail: () => ({ batches: batches.map(summary), errors })
            })
            return batches.find(carries)!
          }),
        disconnect: disconnect(socket)
      }

      let settled = false
      socket.onOpen(() => {
        if (settled) return
        settled = true
        resume(Effect.succeed(client))
      })
      socket.onError((error: unknown) => {
        if (settled) return
        settled = true
        socket.disconnect()
        resume(Effect.fail(new Error(`socket did not open: ${String((error as any)?.message ?? error)}`)))
      })
      socket.connect()
      const timer = setTimeout(() => {
        if (settled) return
        settled = true
        socket.disconnect()
        resume(Effect.fail(new Error("socket did not open in time")))
      }, options.timeoutMs ?? 10_000)
      return Effect.sync(() => clearTimeout(timer))
    }),
    (client) => client.disconnect
  )

/** Connects, joins `sync:v1` (failing unless the join is ok) and returns the client with the join reply. */
export const connectJoined = (options: ConnectOptions) =>
  Effect.gen(function*() {
    const client = yield* connect(options)
    const joined = yield* client.join()
    if (joined.status !== "ok") return yield* Effect.die(new Error(`join refused: ${JSON.stringify(joined)}`))
    return { client, joinReply: joined.response }
  })

/** Subscribes and dies unless the reply is ok; returns the reply's response. */
export const subscribeOk = (client: SyncClient, payload: object) =>
  Effect.flatMap(client.subscribe(payload), (reply) =>
    reply.status === "ok"
      ? Effect.succeed(reply.response)
      : Effect.die(new Error(`subscribe refused: ${JSON.stringify(reply)}`)))
