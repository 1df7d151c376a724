import { describe, expect, it } from "@effect/vitest"
import { Either } from "effect"
import * as fc from "fast-check"
import { Socket } from "phoenix"
import * as PhoenixFrame from "../../src/protocol/PhoenixFrame.js"

const decode = (text: string): PhoenixFrame.Frame => Either.getOrThrow(PhoenixFrame.decodeFrame(text))

const failure = (text: string): PhoenixFrame.FrameError =>
  Either.getOrThrow(Either.flip(PhoenixFrame.decodeFrame(text)))

const fields = (error: PhoenixFrame.FrameError) => {
  const { _tag, ...rest } = error
  return rest
}

// Stands in for the browser WebSocket so the real `phoenix` client can be driven in-process: whatever it
// sends is recorded, whatever the test `receive`s is delivered as a server message.
class FakeWebSocket {
  static last: FakeWebSocket | undefined
  readyState = 0
  bufferedAmount = 0
  binaryType = "arraybuffer"
  timeout = 0
  onopen: (() => void) | null = null
  onmessage: ((event: { readonly data: string }) => void) | null = null
  onclose: ((event: { readonly code: number; readonly reason: string; readonly wasClean: boolean }) => void) | null =
    null
  onerror: ((error: unknown) => void) | null = null
  readonly sent: Array<string> = []

  constructor(readonly url: string) {
    FakeWebSocket.last = this
  }

  send(data: string): void {
    this.sent.push(data)
  }

  close(code = 1000, reason = ""): void {
    this.readyState = 3
    this.onclose?.({ code, reason, wasClean: true })
  }

  open(): void {
    this.readyState = 1
    this.onopen?.()
  }

  receive(data: string): void {
    this.onmessage?.({ data })
  }

  lastSent(): PhoenixFrame.Frame {
    return decode(this.sent.at(-1)!)
  }
}

const connect = () => {
  const socket = new Socket("ws://localhost/socket", { transport: FakeWebSocket, params: { token: "t" } })
  socket.connect()
  const ws = FakeWebSocket.last!
  ws.open()
  return { socket, ws }
}

describe("PhoenixFrame with the official phoenix client", () => {
  it("decodes what the client sends and the client accepts what the builders produce", () => {
    const { socket, ws } = connect()
    expect(ws.url).toContain("vsn=2.0.0")
    const channel = socket.channel("sync:v1", { client: "test" })

    const joined: Array<unknown> = []
    channel.join().receive("ok", (response) => joined.push(response))
    const join = ws.lastSent()
    expect(join).toStrictEqual({
      joinRef: join.ref,
      ref: expect.any(String),
      topic: "sync:v1",
      event: "phx_join",
      payload: { client: "test" }
    })
    ws.receive(PhoenixFrame.encodeFrame(PhoenixFrame.reply(join.joinRef, join.ref, "sync:v1", "ok", { id: "s1" })))
    expect(joined).toStrictEqual([{ id: "s1" }])
    expect(channel.state).toBe("joined")

    const replies: Array<unknown> = []
    channel.push("sync:subscribe", { topics: ["runtime.notifications"] }).receive("error", (r) => replies.push(r))
    const subscribe = ws.lastSent()
    expect(subscribe).toStrictEqual({
      joinRef: join.joinRef,
      ref: expect.any(String),
      topic: "sync:v1",
      event: "sync:subscribe",
      payload: { topics: ["runtime.notifications"] }
    })
    expect(subscribe.ref).not.toBe(join.ref)
    const response = { code: "bad_subscription", message: "no" }
    ws.receive(PhoenixFrame.encodeFrame(PhoenixFrame.reply(join.joinRef, subscribe.ref, "sync:v1", "error", response)))
    expect(replies).toStrictEqual([response])

    // Pushes, including the spliced fast path; a push for a stale join ref is dropped by the client.
    const pushed: Array<unknown> = []
    channel.on("sync:update_batch", (payload) => {
      pushed.push(payload)
    })
    ws.receive(PhoenixFrame.encodeFrame(PhoenixFrame.push(join.joinRef, "sync:v1", "sync:update_batch", { n: 1 })))
    ws.receive(PhoenixFrame.encodePush(join.joinRef, "sync:v1", "sync:update_batch", "{\"n\":2}"))
    ws.receive(PhoenixFrame.encodePush("stale", "sync:v1", "sync:update_batch", "{\"n\":3}"))
    expect(pushed).toStrictEqual([{ n: 1 }, { n: 2 }])

    // The socket heartbeat has no join ref and is answered on the "phoenix" topic.
    const pongs: Array<number> = []
    expect(socket.ping((latency) => pongs.push(latency))).toBe(true)
    const heartbeat = ws.lastSent()
    expect(heartbeat).toStrictEqual({
      joinRef: null,
      ref: expect.any(String),
      topic: "phoenix",
      event: "heartbeat",
      payload: {}
    })
    ws.receive(PhoenixFrame.encodeFrame(PhoenixFrame.phoenixHeartbeatReply(heartbeat.ref)))
    expect(pongs).toHaveLength(1)

    // A server-side close ends the join.
    const closed: Array<unknown> = []
    channel.onClose(() => {
      closed.push("closed")
    })
    ws.receive(PhoenixFrame.encodeFrame(PhoenixFrame.close(join.joinRef, "sync:v1")))
    expect(closed).toStrictEqual(["closed"])
    expect(channel.state).toBe("closed")
    socket.disconnect()
  })

  it("sends phx_leave and accepts the ok reply", () => {
    const { socket, ws } = connect()
    const channel = socket.channel("sync:v1", {})
    channel.join()
    const join = ws.lastSent()
    ws.receive(PhoenixFrame.encodeFrame(PhoenixFrame.reply(join.joinRef, join.ref, "sync:v1", "ok", {})))
    const left: Array<unknown> = []
    channel.leave().receive("ok", () => left.push("ok"))
    const leave = ws.lastSent()
    expect(leave).toMatchObject({ joinRef: join.joinRef, topic: "sync:v1", event: "phx_leave", payload: {} })
    ws.receive(PhoenixFrame.encodeFrame(PhoenixFrame.reply(join.joinRef, leave.ref, "sync:v1", "ok", {})))
    ws.receive(PhoenixFrame.encodeFrame(PhoenixFrame.close(join.joinRef, "sync:v1")))
    expect(left).toStrictEqual(["ok"])
    expect(channel.state).toBe("closed")
    socket.disconnect()
  })

  it("lets the client see a join error", () => {
    const { socket, ws } = connect()
    const errors: Array<unknown> = []
    socket.channel("other:topic", {}).join().receive("error", (response) => errors.push(response))
    const join = ws.lastSent()
    const frame = PhoenixFrame.reply(join.joinRef, join.ref, "other:topic", "error", { reason: "unmatched topic" })
    ws.receive(PhoenixFrame.encodeFrame(frame))
    expect(errors).toStrictEqual([{ reason: "unmatched topic" }])
    socket.disconnect()
  })
})

describe("PhoenixFrame encoding", () => {
  it("lays frames out as [join_ref, ref, topic, event, payload]", () => {
    expect(PhoenixFrame.encodeFrame(PhoenixFrame.reply("1", "2", "sync:v1", "ok", { a: 1 }))).toBe(
      "[\"1\",\"2\",\"sync:v1\",\"phx_reply\",{\"status\":\"ok\",\"response\":{\"a\":1}}]"
    )
    expect(PhoenixFrame.encodeFrame(PhoenixFrame.phoenixHeartbeatReply("7"))).toBe(
      "[null,\"7\",\"phoenix\",\"phx_reply\",{\"status\":\"ok\",\"response\":{}}]"
    )
    expect(PhoenixFrame.encodeFrame(PhoenixFrame.close("3", "sync:v1"))).toBe(
      "[\"3\",\"3\",\"sync:v1\",\"phx_close\",{}]"
    )
    expect(PhoenixFrame.encodeFrame(PhoenixFrame.push("3", "sync:v1", "sync:heartbeat", { watermarks: [] }))).toBe(
      "[\"3\",null,\"sync:v1\",\"sync:heartbeat\",{\"watermarks\":[]}]"
    )
    expect(PhoenixFrame.encodeFrame({ joinRef: null, ref: null, topic: "t", event: "e", payload: undefined })).toBe(
      "[null,null,\"t\",\"e\",{}]"
    )
  })

  it("decode(encode(frame)) is the frame", () => {
    const ref = fc.option(fc.string({ unit: "binary" }), { nil: null })
    const frame = fc.record({
      joinRef: ref,
      ref,
      topic: fc.string({ unit: "binary" }),
      event: fc.string({ unit: "binary" }),
      payload: fc.jsonValue()
    })
    fc.assert(fc.property(frame, (frame) => {
      // JSON has no -0: compare with the payload as JSON carries it.
      const expected = { ...frame, payload: JSON.parse(JSON.stringify(frame.payload)) }
      expect(decode(PhoenixFrame.encodeFrame(frame))).toStrictEqual(expected)
    }))
  })

  it("encodePush splices the payload text exactly as encodeFrame would serialize it", () => {
    const ref = fc.option(fc.string({ unit: "binary" }), { nil: null })
    fc.assert(fc.property(ref, fc.string(), fc.string(), fc.jsonValue(), (joinRef, topic, event, payload) => {
      expect(PhoenixFrame.encodePush(joinRef, topic, event, JSON.stringify(payload))).toBe(
        PhoenixFrame.encodeFrame(PhoenixFrame.push(joinRef, topic, event, payload))
      )
    }))
  })
})

describe("PhoenixFrame decoding of malformed frames", () => {
  it("accepts any JSON payload", () => {
    expect(decode("[null,\"1\",\"phoenix\",\"heartbeat\",{}]")).toStrictEqual({
      joinRef: null,
      ref: "1",
      topic: "phoenix",
      event: "heartbeat",
      payload: {}
    })
    expect(decode("[\"1\",\"2\",\"t\",\"e\",[1,\"x\"]]").payload).toStrictEqual([1, "x"])
    expect(decode("[\"1\",\"2\",\"t\",\"e\",null]").payload).toBeNull()
    expect([{}, { a: 1 }, [], null, "x", 1].map(PhoenixFrame.isObjectPayload)).toStrictEqual(
      [true, true, false, false, false, false]
    )
  })

  it("refuses text that is not JSON", () => {
    for (const text of ["", "[", "not json", "[\"1\",\"2\",\"t\",\"e\",{}", "[1,]"]) {
      expect(fields(failure(text))).toStrictEqual({ reason: "not_json" })
    }
  })

  it("refuses JSON that is not an array", () => {
    for (const text of ["{}", "{\"join_ref\":\"1\",\"ref\":\"2\"}", "null", "\"x\"", "5"]) {
      expect(fields(failure(text))).toStrictEqual({ reason: "not_an_array" })
    }
  })

  it("refuses arrays of the wrong length, keeping the fields it could read", () => {
    expect(fields(failure("[\"1\",\"2\",\"sync:v1\",\"sync:subscribe\"]"))).toStrictEqual({
      reason: "wrong_arity",
      joinRef: "1",
      ref: "2",
      topic: "sync:v1",
      event: "sync:subscribe"
    })
    expect(fields(failure("[\"1\",\"2\",\"sync:v1\",\"sync:subscribe\",{},{}]"))).toStrictEqual({
      reason: "wrong_arity",
      joinRef: "1",
      ref: "2",
      topic: "sync:v1",
      event: "sync:subscribe"
    })
    expect(fields(failure("[]"))).toStrictEqual({ reason: "wrong_arity" })
    expect(fields(failure("[null]"))).toStrictEqual({ reason: "wrong_arity", joinRef: null })
  })

  it("refuses elements of the wrong type, naming the first and keeping the others", () => {
    expect(fields(failure("[\"1\",\"2\",42,\"sync:subscribe\",{}]"))).toStrictEqual({
      reason: "bad_field",
      field: "topic",
      joinRef: "1",
      ref: "2",
      event: "sync:subscribe"
    })
    // Numeric refs are not coerced: the reply's ref would not `===` the client's.
    expect(fields(failure("[\"1\",2,\"sync:v1\",\"sync:subscribe\",{}]"))).toStrictEqual({
      reason: "bad_field",
      field: "ref",
      joinRef: "1",
      topic: "sync:v1",
      event: "sync:subscribe"
    })
    expect(fields(failure("[1,\"2\",\"sync:v1\",\"e\",{}]"))).toMatchObject({ field: "join_ref", ref: "2" })
    expect(fields(failure("[\"1\",\"2\",\"sync:v1\",null,{}]"))).toMatchObject({ field: "event", ref: "2" })
    expect(failure("[\"1\",\"2\",42,\"e\",{}]").message).toBe("frame element topic has the wrong type")
  })

  it("survives huge nesting", () => {
    const depth = 100_000
    const nested = "[".repeat(depth) + "]".repeat(depth)
    // In the payload it is just a payload (the server bounds frame bytes, not depth).
    expect(decode(`["1","2","t","e",${nested}]`).ref).toBe("2")
    expect(fields(failure(`["1","2",${nested},"e",{}]`))).toStrictEqual({
      reason: "bad_field",
      field: "topic",
      joinRef: "1",
      ref: "2",
      event: "e"
    })
    expect(fields(failure("[".repeat(depth)))).toStrictEqual({ reason: "not_json" })
  })

  it("never throws, and reads exactly the well-typed fields of any JSON array", () => {
    const element = fc.oneof(fc.jsonValue(), fc.string(), fc.constant(null))
    fc.assert(fc.property(fc.array(element, { maxLength: 7 }), (elements) => {
      const result = PhoenixFrame.decodeFrame(JSON.stringify(elements))
      const [joinRef, ref, topic, event] = JSON.parse(JSON.stringify(elements)) as Array<unknown>
      const isRef = (u: unknown) => u === null || typeof u === "string"
      const wellTyped = isRef(joinRef) && isRef(ref) && typeof topic === "string" && typeof event === "string"
      if (elements.length === 5 && wellTyped) {
        expect(Either.isRight(result)).toBe(true)
        return
      }
      const error = Either.getOrThrow(Either.flip(result))
      expect(error.reason).toBe(elements.length === 5 ? "bad_field" : "wrong_arity")
      expect(error.joinRef).toStrictEqual(elements.length > 0 && isRef(joinRef) ? joinRef : undefined)
      expect(error.ref).toStrictEqual(elements.length > 1 && isRef(ref) ? ref : undefined)
      expect(error.topic).toStrictEqual(typeof topic === "string" ? topic : undefined)
      expect(error.event).toStrictEqual(typeof event === "string" ? event : undefined)
    }))
    fc.assert(fc.property(fc.string({ unit: "binary" }), (text) => {
      expect(() => PhoenixFrame.decodeFrame(text)).not.toThrow()
    }))
  })
})
