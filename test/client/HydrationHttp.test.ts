/** The HTTP hydration calls (protocol.md §6) against a scripted `fetch`: paths, paging, batching, and typed failures. */
import { describe, expect, it } from "@effect/vitest"
import * as Micro from "effect/Micro"
import { batchGet, getDocument, type HttpOptions, hydrateTopic } from "../../src/client/Hydration.js"

interface Call {
  readonly method: string
  readonly url: string
  readonly body: unknown
  readonly authorization: string | undefined
}

const scripted = (answer: (call: Call) => Response | Promise<Response>) => {
  const calls: Array<Call> = []
  const fetch = (async (url: string, init: RequestInit) => {
    const call = {
      method: init.method ?? "GET",
      url,
      body: init.body === undefined ? undefined : JSON.parse(String(init.body)),
      authorization: (init.headers as Record<string, string>)["authorization"]
    }
    calls.push(call)
    return answer(call)
  }) as unknown as typeof globalThis.fetch
  const http: HttpOptions = { baseUrl: "http://sync.test/", token: Micro.succeed("jwt"), fetch, pageSize: 2 }
  return { calls, http }
}

const json = (body: unknown, status = 200, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { "content-type": "application/json", ...headers } })

const wire = (key: string, version: number, watermark: number, extra: object = {}) => ({
  doc_key: key,
  doc_version: version,
  payload: { key },
  payload_hash: null,
  watermark,
  deleted: false,
  ...extra
})

const run = <A, E>(effect: Micro.Micro<A, E>) => Micro.runPromiseExit(effect)

describe("HTTP hydration", () => {
  it("pages a listing at one snapshot, skips deleted documents, fetches oversize ones alone", async () => {
    const { calls, http } = scripted(({ url }) => {
      if (url.endsWith("/documents/big")) return json(wire("big", 3, 5))
      const cursor = new URL(url).searchParams.get("cursor")
      return cursor === null
        ? json({
          snapshot_watermark: 9,
          epoch: "e1",
          documents: [wire("a", 1, 2), wire("gone", 2, 4, { deleted: true })],
          next_cursor: "c2"
        })
        : json({
          snapshot_watermark: 9,
          epoch: "e1",
          documents: [wire("big", 3, 5, { payload: null, hydration_required: true })],
          next_cursor: null
        })
    })
    const exit = await run(hydrateTopic(http, "runtime.run_summaries", { docKeyPrefix: "" }, 0))
    expect(exit).toMatchObject({ _tag: "Success", value: { watermark: 9, epoch: "e1" } })
    if (exit._tag !== "Success") return
    expect(exit.value.documents.map((d) => [d.docKey, d.payload])).toEqual([["a", { key: "a" }], ["big", {
      key: "big"
    }]])
    expect(calls.map((c) => c.url)).toEqual([
      "http://sync.test/sync/v1/topics/runtime.run_summaries/documents?limit=2&doc_key_prefix=",
      "http://sync.test/sync/v1/topics/runtime.run_summaries/documents?limit=2&cursor=c2&doc_key_prefix=",
      "http://sync.test/sync/v1/topics/runtime.run_summaries/documents/big"
    ])
    expect(calls.every((c) => c.authorization === "Bearer jwt")).toBe(true)
  })

  it("starts a listing over when the journal is reset between its pages", async () => {
    let listings = 0
    const { calls, http } = scripted(({ url }) => {
      const cursor = new URL(url).searchParams.get("cursor")
      if (cursor === null) {
        listings++
        const epoch = `e${listings}`
        return json({ snapshot_watermark: 9, epoch, documents: [wire(`a${listings}`, 1, 2)], next_cursor: epoch })
      }
      // the cursor of the first listing is of the old epoch
      return cursor === "e1"
        ? json({ code: "stale_cursor", message: "reset", reason: "epoch_changed" }, 400)
        : json({ snapshot_watermark: 9, epoch: "e2", documents: [wire("b", 1, 3)], next_cursor: null })
    })
    const exit = await run(hydrateTopic(http, "t", undefined, 0))
    expect(exit).toMatchObject({ _tag: "Success", value: { watermark: 9, epoch: "e2" } })
    if (exit._tag !== "Success") return
    expect(exit.value.documents.map((d) => d.docKey)).toEqual(["a2", "b"])
    expect(calls).toHaveLength(4)
  })

  it("asks batchGet at most 1000 keys at a time and answers every key, absent ones as undefined", async () => {
    const { calls, http } = scripted(({ body }) =>
      json({
        documents: (body as { doc_keys: Array<string> }).doc_keys.filter((k) => k !== "k7").map((k) => wire(k, 1, 1))
      })
    )
    const keys = Array.from({ length: 2500 }, (_, i) => `k${i}`)
    const exit = await run(batchGet(http, "t", keys))
    expect(calls.map((c) => (c.body as { doc_keys: Array<string> }).doc_keys.length)).toEqual([1000, 1000, 500])
    expect(calls[0]!.url).toBe("http://sync.test/sync/v1/topics/t/documents:batchGet")
    if (exit._tag !== "Success") throw new Error("batchGet failed")
    expect(exit.value.size).toBe(2500)
    expect(exit.value.get("k7")).toBeUndefined()
    expect(exit.value.get("k8")?.docVersion).toBe(1)
  })

  it("hydrates a docKeys filter with batchGet, resuming from its newest document or the retention floor", async () => {
    const { http } = scripted(() => json({ documents: [wire("a", 1, 30), wire("b", 4, 12)] }))
    const newest = await run(hydrateTopic(http, "t", { docKeys: ["a", "b", "c"] }, 0))
    expect(newest).toMatchObject({ _tag: "Success", value: { watermark: 30 } })
    const floor = await run(hydrateTopic(http, "t", { docKeys: ["a", "b", "c"] }, 55))
    expect(floor).toMatchObject({ _tag: "Success", value: { watermark: 55 } })
  })

  it("reads 404 as absent, and fails with the SPEC code, status and retry delay otherwise", async () => {
    const absent = scripted(() => json({ code: "not_found", message: "no" }, 404))
    expect(await run(getDocument(absent.http, "t", "a/b"))).toMatchObject({ _tag: "Success", value: undefined })
    expect(absent.calls[0]!.url).toBe("http://sync.test/sync/v1/topics/t/documents/a%2Fb")

    const limited = scripted(() => json({ code: "rate_limited", message: "slow down" }, 429, { "retry-after": "2" }))
    const exit = await run(hydrateTopic(limited.http, "t", undefined, 0))
    expect(exit).toMatchObject({
      _tag: "Failure",
      cause: { _tag: "Fail", error: { _tag: "HydrationFailed", code: "rate_limited", status: 429, retryAfterMs: 2000 } }
    })
    const down = scripted(() => new Response("bad gateway", { status: 503 }))
    expect(await run(hydrateTopic(down.http, "t", undefined, 0))).toMatchObject({
      cause: { error: { code: "internal", status: 503 } }
    })
    const offline = scripted(() => Promise.reject(new TypeError("fetch failed")))
    expect(await run(batchGet(offline.http, "t", ["a"]))).toMatchObject({ cause: { error: { code: "network" } } })
    const garbled = scripted(() => json({ documents: [{ nope: true }] }))
    expect(await run(batchGet(garbled.http, "t", ["a"]))).toMatchObject({ cause: { error: { code: "bad_response" } } })
  })
})
