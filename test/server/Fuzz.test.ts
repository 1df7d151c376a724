/**
 * Hostile input against one real server on Postgres (I7, I9, protocol.md §3, §6, §9): fast-check generates frames
 * of every wrong kind (not JSON, wrong arity, wrong types, deep, over the size limit, unicode, replayed refs, joins
 * and leaves interleaved, tokens with every claim wrong) for a handful of sockets of several orgs, and hydration
 * requests with bad paths, parameters, headers, bodies and tokens, while a well-behaved client beside them follows a
 * topic that is published to throughout.
 *
 * Properties: the server never faults (no `internal`, no 1011, no 5xx) and still serves afterwards; every hostile
 * socket is answered with a protocol error (reply or push) or closed with a code of protocol.md §2; the well-behaved
 * client receives every row of its org published during the run, in order, without a gap; and nothing of another
 * org reaches anyone, live, in replay, through filters, or over HTTP. Counts and the seed are printed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer } from "effect"
import fc from "fast-check"
import { SignJWT, UnsecuredJWT } from "jose"
import { randomUUID } from "node:crypto"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import { serveInProcess } from "../support/InProcess.js"
import { hsKeys, token } from "../support/Khala.js"
import { connectJoined, subscribeOk, waitUntil } from "../support/PhoenixClient.js"
import { layerDatabase, postgresAvailable, testDatabase } from "../support/Postgres.js"
import type { RawFrame, RawSocket } from "../support/RawSocket.js"
import { openRaw, upgradeOutcome } from "../support/RawSocket.js"

const runs = "runtime.run_summaries"
const notes = "runtime.notifications"
const seed = Number(process.env["KHALA_FUZZ_SEED"] ?? Date.now() % 2 ** 31)
const framesPerSocket = 1700
const chunk = 50
const httpRequests = 1100

// ---------------------------------------------------------------------------------------------------------------
// tokens with every claim wrong

const secret = new TextEncoder().encode(hsKeys[0].secret)
const now = () => Math.floor(Date.now() / 1000)
const claims = (org: string) => ({
  sub: "hostile",
  jti: randomUUID(),
  iat: now(),
  exp: now() + 3600,
  oa_org_id: org,
  oa_sync_scopes: [runs]
})
const signed = (payload: Record<string, unknown>, header: Record<string, unknown> = {}, key = secret) =>
  new SignJWT(payload).setProtectedHeader({ alg: "HS256", kid: "k1", ...header }).sign(key)
const without = (name: string) => {
  const c: Record<string, unknown> = claims("org_a")
  delete c[name]
  return signed(c)
}

/** Tokens the verifier must refuse, each wrong in one way. */
const badTokens = async (): Promise<ReadonlyArray<string>> => [
  ...(await Promise.all(["sub", "exp", "iat", "jti", "oa_org_id", "oa_sync_scopes"].map(without))),
  await signed({ ...claims("org_a"), exp: now() - 3600 }),
  await signed({ ...claims("org_a"), nbf: now() + 3600 }),
  await signed({ ...claims("org_a"), exp: "tomorrow" }),
  await signed({ ...claims("org_a"), oa_org_id: 42 }),
  await signed({ ...claims("org_a"), oa_sync_scopes: 42 }),
  await signed(claims("org_a"), { kid: "unknown" }),
  await signed(claims("org_a"), {}, new TextEncoder().encode("not-the-secret-not-the-secret-0123456789")),
  await new SignJWT(claims("org_a")).setProtectedHeader({ alg: "HS512", kid: "k1" }).sign(secret),
  new UnsecuredJWT(claims("org_a")).encode(),
  "",
  "not a token",
  "a.b.c",
  "eyJhbGciOiJIUzI1NiJ9.e30.",
  "x".repeat(10_000)
]

// ---------------------------------------------------------------------------------------------------------------
// hostile frames

/**
 * Text over all of unicode, lone surrogates and controls included, built from code points: fast-check's own
 * full-unicode string arbitraries build a table of every code point when they are made, which costs seconds.
 */
const unicodeText = (maxLength: number) =>
  fc.array(
    fc.oneof(
      fc.integer({ min: 0, max: 0x7f }).map((c) => String.fromCharCode(c)),
      fc.integer({ min: 0x80, max: 0x10ffff }).map((c) => String.fromCodePoint(c)),
      fc.integer({ min: 0xd800, max: 0xdfff }).map((c) => String.fromCharCode(c)),
      fc.constantFrom("\u0000", "\u202e", "\ufeff", "é", "👩‍👩‍👧", "\"", "\\")
    ),
    { maxLength }
  ).map((chars) => chars.join(""))
const binaryText = unicodeText(120)
const topicNames = fc.oneof(
  fc.constantFrom(runs, notes, "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES", "runtime.codex_worker_events", "nope.topic", ""),
  fc.string({ maxLength: 24 }),
  binaryText.map((text) => text.slice(0, 12))
)
const watermarks = fc.oneof(
  fc.nat({ max: 400 }),
  fc.integer({ min: -5, max: -1 }),
  fc.double(),
  fc.constantFrom(2 ** 53, 2 ** 64, 1e300, "7", null, true)
)
const refs = fc.oneof(fc.constant(null), fc.constantFrom("j", "dup", "1"), fc.string({ maxLength: 6 }), fc.integer())
const events = fc.oneof(
  fc.constantFrom(
    "phx_join",
    "phx_leave",
    "sync:subscribe",
    "sync:unsubscribe",
    "sync:heartbeat",
    "sync:auth",
    "heartbeat",
    "phx_reply",
    "sync:update_batch"
  ),
  fc.string({ maxLength: 12 })
)
const channelTopics = fc.oneof(
  fc.constantFrom("sync:v1", "sync:v1", "phoenix", "sync:v2", ""),
  fc.string(),
  fc.integer()
)
const filters = fc.dictionary(
  topicNames,
  fc.oneof(
    fc.record({ doc_keys: fc.array(fc.oneof(fc.string(), fc.constantFrom("org_a:r1", "org_b:r1")), { maxLength: 5 }) }),
    fc.record({ doc_key_prefix: fc.oneof(fc.string(), fc.constantFrom("org_a:", "org_b:", "")) }),
    fc.jsonValue({ maxDepth: 2 })
  ),
  { maxKeys: 3 }
)
const subscribePayload = fc.record({
  topics: fc.oneof(fc.array(topicNames, { maxLength: 70 }), topicNames, fc.constant(null)),
  resume_after: fc.oneof(
    fc.array(fc.record({ topic: topicNames, watermark: watermarks, epoch: fc.option(fc.string()) }), { maxLength: 4 }),
    fc.dictionary(topicNames, watermarks, { maxKeys: 4 }),
    fc.jsonValue({ maxDepth: 2 })
  ),
  replay_batch_size: fc.oneof(fc.integer(), fc.string(), fc.double()),
  filters: fc.oneof(filters, fc.jsonValue({ maxDepth: 2 })),
  request_id: fc.oneof(fc.string(), fc.integer())
}, { requiredKeys: [] })
const joinPayload = fc.record({
  client_build_id: fc.oneof(fc.string({ maxLength: 140 }), fc.integer()),
  protocol_version: fc.oneof(fc.integer(), fc.string()),
  schema_version: fc.oneof(fc.integer(), fc.double())
}, { requiredKeys: [] })

const frames = (tokens: ReadonlyArray<string>) => {
  const authPayload = fc.record({ token: fc.oneof(fc.constantFrom(...tokens), fc.string()) }, { requiredKeys: [] })
  const payloads = fc.oneof(
    subscribePayload,
    joinPayload,
    authPayload,
    fc.record({ topics: fc.array(topicNames, { maxLength: 4 }) }),
    fc.jsonValue({ maxDepth: 3 }),
    fc.constant({})
  )
  const frame = fc.tuple(fc.oneof(refs, fc.constant("j")), refs, channelTopics, events, payloads)
  const valid = JSON.stringify
  return fc.oneof(
    { weight: 30, arbitrary: frame.map(valid) },
    // joins and leaves interleaved with requests on one join ref
    {
      weight: 10,
      arbitrary: fc.tuple(fc.constantFrom("phx_join", "phx_leave", "sync:subscribe", "sync:unsubscribe"), payloads).map(
        (
          [event, payload]
        ) => valid(["j", "j", "sync:v1", event, payload])
      )
    },
    // wrong arity and wrong types
    { weight: 8, arbitrary: fc.array(fc.jsonValue({ maxDepth: 2 }), { maxLength: 8 }).map(valid) },
    { weight: 4, arbitrary: fc.jsonValue({ maxDepth: 3 }).map(valid) },
    // not JSON at all, or cut short
    { weight: 6, arbitrary: binaryText },
    { weight: 4, arbitrary: fc.tuple(frame.map(valid), fc.nat()).map(([text, n]) => text.slice(0, n % text.length)) },
    // deep: bare brackets, or a payload nested far down
    { weight: 3, arbitrary: fc.integer({ min: 20, max: 4000 }).map((n) => "[".repeat(n) + "]".repeat(n)) },
    {
      weight: 3,
      arbitrary: fc.integer({ min: 20, max: 2000 }).map((n) =>
        `["j","deep","sync:v1","sync:subscribe",${"{\"a\":".repeat(n)}1${"}".repeat(n)}]`
      )
    },
    // over the frame limit (64 KiB): answered from its head alone
    {
      weight: 1,
      arbitrary: fc.integer({ min: 65_000, max: 300_000 }).map((n) =>
        valid(["j", "big", "sync:v1", "sync:subscribe", { topics: ["x".repeat(n)] }])
      )
    },
    // unicode where names and refs go
    {
      weight: 3,
      arbitrary: fc.tuple(binaryText, unicodeText(20)).map(([a, b]) =>
        valid([a, b, "sync:v1", "sync:subscribe", { topics: [a, b], request_id: b }])
      )
    }
  )
}

// ---------------------------------------------------------------------------------------------------------------
// hostile HTTP requests

interface HttpProbe {
  readonly method: string
  readonly path: string
  readonly headers: Record<string, string>
  readonly body?: string
}

/** A path segment for any string; a lone surrogate, which has no UTF-8, becomes bytes that are not UTF-8 either. */
const encodeSegment = (text: string) => {
  try {
    return encodeURIComponent(text)
  } catch {
    return "%ED%A0%80"
  }
}

const httpProbes = (valid: ReadonlyArray<string>, bad: ReadonlyArray<string>, cursors: ReadonlyArray<string>) => {
  const segment = fc.oneof(
    topicNames.map(encodeSegment),
    fc.constantFrom("..", "%2e%2e", "%zz", "%00", "", "documents", "org_a%3Ar1", "org_b%3Ar1"),
    fc.string({ maxLength: 10 }).map(encodeSegment)
  )
  const plausibleTopic = fc.constantFrom(runs, notes, "SYNC_TOPIC_RUNTIME_RUN_SUMMARIES")
  const path = fc.oneof(
    // requests a client could send, with parameters and keys of every kind
    plausibleTopic.map((t) => `/sync/v1/topics/${t}/documents`),
    fc.tuple(plausibleTopic, fc.oneof(fc.constantFrom("org_a:r1", "org_b:r2", "org_c:r1"), fc.string())).map((
      [t, k]
    ) => `/sync/v1/topics/${t}/documents/${encodeSegment(k)}`),
    plausibleTopic.map((t) => `/sync/v1/topics/${t}/documents:batchGet`),
    segment.map((t) => `/sync/v1/topics/${t}/documents`),
    fc.tuple(segment, segment).map(([t, k]) => `/sync/v1/topics/${t}/documents/${k}`),
    segment.map((t) => `/sync/v1/topics/${t}/documents:batchGet`),
    fc.array(segment, { maxLength: 6 }).map((parts) => `/sync/v1/${parts.join("/")}`),
    fc.constantFrom(`/sync/v1/topics/${runs}/documents/org_a%3Ar1`, `/sync/v1/topics/${runs}/documents`)
  )
  const query = fc.record({
    limit: fc.oneof(fc.integer(), fc.string({ maxLength: 5 }), fc.constantFrom("0", "1000", "1001", "1e3")),
    cursor: fc.oneof(fc.constantFrom(...cursors), fc.string({ maxLength: 30 }), fc.base64String({ maxLength: 40 })),
    doc_key_prefix: fc.oneof(fc.constantFrom("org_a:", "org_b:", ""), fc.string({ maxLength: 8 }))
  }, { requiredKeys: [] }).map((q) => {
    const params = new URLSearchParams()
    for (const [k, v] of Object.entries(q)) params.set(k, String(v))
    const text = params.toString()
    return text === "" ? "" : `?${text}`
  })
  const authorization = fc.oneof(
    { weight: 4, arbitrary: fc.constantFrom(...valid.map((t) => `Bearer ${t}`)) },
    { weight: 2, arbitrary: fc.constantFrom(...bad.map((t) => `Bearer ${t}`)) },
    fc.constantFrom("", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "bearer a b"),
    fc.string({ maxLength: 40 }).map((s) => `Bearer ${s.replace(/[^\x20-\x7e]/g, "")}`)
  )
  const body = fc.oneof(
    fc.array(fc.oneof(fc.string(), fc.constantFrom("org_a:r1", "org_a:r2", "org_b:r1"), fc.integer()), {
      maxLength: 20
    }).map((keys) => JSON.stringify({ doc_keys: keys })),
    fc.jsonValue({ maxDepth: 3 }).map((v) => JSON.stringify(v)),
    fc.string({ maxLength: 100 }),
    fc.integer({ min: 100, max: 5000 }).map((n) => `{"doc_keys":${"[".repeat(n)}${"]".repeat(n)}}`),
    fc.constant(JSON.stringify({ doc_keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) }))
  )
  const headerValue = fc.string({ maxLength: 20 }).map((s) => s.replace(/[^\x20-\x7e]/g, ""))
  return fc.record({
    method: fc.constantFrom("GET", "GET", "GET", "GET", "POST", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"),
    path: fc.tuple(path, fc.oneof(fc.constant(""), query)).map(([p, q]) => p + q),
    authorization,
    ifNoneMatch: fc.option(headerValue),
    contentType: fc.option(fc.constantFrom("application/json", "text/plain", "multipart/form-data")),
    origin: fc.option(fc.constantFrom("https://evil.example", "null")),
    body: fc.option(body)
  }).map((r): HttpProbe => ({
    method: r.method,
    path: r.path,
    headers: {
      ...(r.authorization === "" ? {} : { authorization: r.authorization }),
      ...(r.ifNoneMatch === null ? {} : { "if-none-match": r.ifNoneMatch }),
      ...(r.contentType === null ? {} : { "content-type": r.contentType }),
      ...(r.origin === null ? {} : { origin: r.origin })
    },
    ...(r.body === null || r.method === "GET" || r.method === "HEAD" ? {} : { body: r.body })
  }))
}

// ---------------------------------------------------------------------------------------------------------------

const pgCore = Layer.unwrapScoped(Effect.map(testDatabase, ({ url }) =>
  KhalaPg.layerWith().pipe(
    Layer.provide(HeadSignals.none),
    Layer.provide(layerDatabase(url, { maxConnections: 12 })),
    Layer.orDie
  )))

/** Close codes a hostile socket may end with (protocol.md §2): never 1011, a fault of the server. */
const allowedCloses = new Set([1000, 1001, 1003, 1005, 1006, 1008, 1009])
/** Error codes a hostile frame may be answered with: never `internal`. */
const allowedCodes = new Set([
  "unauthorized",
  "forbidden_topic",
  "bad_subscription",
  "stale_cursor",
  "payload_too_large"
])

interface Hostile {
  readonly org: string
  readonly token: string
}

/** The org a row belongs to: rows are published with keys prefixed by their org. */
const orgOfKey = (key: string) => key.split(":")[0]

const updatesOf = (frames: ReadonlyArray<RawFrame>) =>
  frames.filter((f) => f[3] === "sync:update_batch" && f[1] === null).flatMap((f) => f[4]?.updates ?? [])

describe.skipIf(!postgresAvailable)("hostile input against one server", () => {
  it.live(
    "frames and hydration requests of every wrong kind: no fault, no leak, no gap for a neighbour",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const server = yield* serveInProcess({ core: pgCore, settings: { framesPerSecond: 1_000_000 } })
        const bad = yield* Effect.promise(badTokens)
        const tokenOf = (org: string, scopes: ReadonlyArray<string>, sub = "hostile") =>
          token({ org, sub, scopes, ttlSeconds: 3600 })
        const hostiles: ReadonlyArray<Hostile> = [
          { org: "org_a", token: yield* tokenOf("org_a", [notes]) },
          { org: "org_a", token: yield* tokenOf("org_a", [runs, notes]) },
          { org: "org_b", token: yield* tokenOf("org_b", [runs, notes]) },
          { org: "org_b", token: yield* tokenOf("org_b", [runs]) },
          { org: "org_c", token: yield* tokenOf("org_c", [runs]) },
          { org: "org_b", token: yield* tokenOf("org_b", [notes, "runtime.codex_worker_events"]) }
        ]
        // the same principal with other scopes: a refresh that passes; another principal's: one that ends the socket
        const frameTokens = [...bad, ...hostiles.map((h) => h.token)]

        // rows of both orgs before the run, for replays to find
        const published: Array<number> = []
        const publish = (org: string, i: number) =>
          Effect.map(server.publish({ orgId: org, docKey: `${org}:r${i}`, payload: { i, text: "é✓" } }), (w) => {
            if (w !== null && org === "org_a") published.push(w)
            return w
          })
        for (let i = 1; i <= 20; i++) {
          yield* publish("org_a", i)
          yield* publish("org_b", i)
        }

        // the well-behaved neighbour, subscribed from the start
        const neighbour = (yield* connectJoined({
          port: server.port,
          token: yield* token({ org: "org_a", sub: "neighbour", scopes: [runs] })
        })).client
        yield* subscribeOk(neighbour, { topics: [runs] })

        // publishing throughout the run, both orgs
        const writer = yield* Effect.fork(Effect.gen(function*() {
          for (let i = 21; i <= 220; i++) {
            yield* publish(i % 3 === 0 ? "org_b" : "org_a", i)
            yield* Effect.sleep("5 millis")
          }
        }))

        const counts = { frames: 0, sockets: 0, closes: new Map<number, number>(), refusedUpgrades: 0, requests: 0 }
        const everySocket: Array<{ readonly hostile: Hostile; readonly raw: RawSocket }> = []

        /** One hostile client: its frames in chunks, each followed by a barrier; a closed socket is opened again. */
        const frameTexts = frames(frameTokens)
        const drive = (hostile: Hostile, index: number) =>
          Effect.gen(function*() {
            const texts = fc.sample(frameTexts, { numRuns: framesPerSocket, seed: seed + index })
            let raw: RawSocket | undefined
            for (let at = 0; at < texts.length; at += chunk) {
              if (raw === undefined || raw.closed() !== undefined) {
                raw = yield* openRaw({ port: server.port, token: hostile.token })
                counts.sockets++
                everySocket.push({ hostile, raw })
                // every socket is asked something it must refuse at least once
                yield* raw.send(["j", "first", "sync:v1", "sync:subscribe", { topics: 42 }])
              }
              const socket = raw
              for (const text of texts.slice(at, at + chunk)) {
                yield* socket.sendText(text)
                counts.frames++
              }
              const ref = `barrier-${at}`
              yield* socket.sendText(JSON.stringify([null, ref, "phoenix", "heartbeat", {}]))
              yield* waitUntil(
                `barrier ${ref} of hostile ${index}`,
                () => socket.closed() !== undefined || socket.frames.some((f) => f[1] === ref && f[2] === "phoenix"),
                { timeoutMs: 15_000, detail: () => socket.frames.slice(-5) }
              )
            }
          })
        yield* Effect.forEach(hostiles, drive, { concurrency: "unbounded" })

        // upgrades with every wrong token are refused before any channel exists
        for (const jwt of bad.filter((t) => t !== "")) {
          const outcome = yield* upgradeOutcome({ port: server.port, token: jwt })
          expect(outcome.status, `token ${jwt.slice(0, 60)}`).toBe(401)
          counts.refusedUpgrades++
        }

        // hydration: a listing cursor of org_a, replayed by others, must show them nothing of org_a
        const base = `http://127.0.0.1:${server.port}`
        const orgA = yield* token({ org: "org_a", sub: "reader", scopes: [runs] })
        const listing = yield* Effect.promise(() =>
          fetch(`${base}/sync/v1/topics/${runs}/documents?limit=5`, { headers: { authorization: `Bearer ${orgA}` } })
            .then((r) => r.json() as Promise<any>)
        )
        expect(listing.next_cursor).toEqual(expect.any(String))
        const orgOfToken = new Map(hostiles.map((h) => [h.token, h.org]))
        const probes = fc.sample(
          httpProbes(
            hostiles.map((h) => h.token),
            bad.filter((t) => t !== "" && t.length < 5000),
            [listing.next_cursor]
          ),
          { numRuns: httpRequests, seed }
        )
        const statuses = new Map<number, number>()
        yield* Effect.forEach(probes, (probe) =>
          Effect.promise(async () => {
            const response = await fetch(`${base}${probe.path}`, {
              method: probe.method,
              headers: probe.headers,
              ...(probe.body === undefined ? {} : { body: probe.body })
            })
            const text = await response.text()
            counts.requests++
            statuses.set(response.status, (statuses.get(response.status) ?? 0) + 1)
            return { probe, status: response.status, text }
          }).pipe(Effect.map(({ probe, status, text }) => {
            expect(status, `${probe.method} ${probe.path}: ${text.slice(0, 200)}`).toBeLessThan(500)
            const bearer = /^Bearer (\S+)$/.exec(probe.headers["authorization"] ?? "")?.[1]
            const org = bearer === undefined ? undefined : orgOfToken.get(bearer)
            if (status === 200 && probe.method !== "HEAD") {
              // only a valid token of some org gets documents, and only that org's
              expect(org, `${probe.method} ${probe.path} answered 200 without a valid token`).toBeDefined()
              const body = JSON.parse(text)
              const keys: Array<string> = body.documents?.map((d: any) => d.doc_key) ?? [body.doc_key]
              for (const key of keys) expect(orgOfKey(key), `${probe.path} for ${org}`).toBe(org)
            }
            if (status >= 400 && probe.method !== "HEAD" && text !== "") {
              expect(JSON.parse(text).code, `${probe.method} ${probe.path}`).toEqual(expect.any(String))
            }
          })), { concurrency: 8, discard: true })

        yield* Fiber.join(writer)

        // the neighbour got every org_a row, in order, without a gap or a stranger's row
        const last = published.at(-1)!
        yield* waitUntil("the neighbour to reach the last row", () => (neighbour.persisted(runs) ?? 0) >= last, {
          timeoutMs: 15_000
        })
        expect(neighbour.updates(runs).map((u) => u.doc_key.split(":")[0])).toEqual(published.map(() => "org_a"))
        expect(neighbour.watermarks(runs)).toEqual(published)
        expect(neighbour.errors).toEqual([])
        expect(neighbour.closes).toEqual([])

        // every hostile socket was refused something or closed; none faulted; none saw another org's row
        for (const { hostile, raw } of everySocket) {
          const errors = raw.frames.filter((f) =>
            (f[3] === "phx_reply" && f[4]?.status === "error") || (f[3] === "sync:error" && f[1] === null)
          )
          expect(errors.length > 0 || raw.closed() !== undefined).toBe(true)
          for (const f of errors) {
            const response = f[3] === "phx_reply" ? f[4].response : f[4]
            if (response?.code !== undefined) expect(allowedCodes, JSON.stringify(response)).toContain(response.code)
            else expect(response).toEqual({ reason: "unmatched topic" })
          }
          const closed = raw.closed()
          if (closed !== undefined) {
            expect(allowedCloses, `close ${closed.code} ${closed.reason}`).toContain(closed.code)
            counts.closes.set(closed.code, (counts.closes.get(closed.code) ?? 0) + 1)
          }
          for (const update of updatesOf(raw.frames)) expect(orgOfKey(update.doc_key)).toBe(hostile.org)
        }

        // explicit cross-tenant probes: org_b asks for org_a's rows by replay, by key filter, by prefix, over HTTP
        const orgB = yield* token({ org: "org_b", sub: "prober", scopes: [runs] })
        const probe = yield* openRaw({ port: server.port, token: orgB })
        yield* probe.request("j", "j", "sync:v1", "phx_join", {})
        for (
          const [ref, filter] of [
            ["p1", undefined],
            ["p2", { doc_keys: ["org_a:r1", "org_a:r2", "org_a:r30"] }],
            ["p3", { doc_key_prefix: "org_a:" }]
          ] as const
        ) {
          const from = probe.frames.length
          const reply = yield* probe.request("j", ref, "sync:v1", "sync:subscribe", {
            topics: [runs],
            ...(filter === undefined ? {} : { filters: { [runs]: filter } })
          })
          expect(reply[4].status).toBe("ok")
          yield* probe.waitForFrame(`replay of ${ref}`, (f) => f[3] === "sync:update_batch" && f[4].replay_complete, {
            from
          })
          const seen = updatesOf(probe.frames.slice(from))
          for (const update of seen) expect(orgOfKey(update.doc_key)).toBe("org_b")
          if (filter !== undefined) expect(seen).toEqual([])
        }
        const http = (path: string, init: RequestInit = {}) =>
          Effect.promise(() =>
            fetch(`${base}${path}`, { ...init, headers: { authorization: `Bearer ${orgB}`, ...init.headers } }).then(
              async (r) => ({ status: r.status, body: await r.text() })
            )
          )
        expect((yield* http(`/sync/v1/topics/${runs}/documents/org_a%3Ar1`)).status).toBe(404)
        const batch = yield* http(`/sync/v1/topics/${runs}/documents:batchGet`, {
          method: "POST",
          headers: { "content-type": "application/json" },
          body: JSON.stringify({ doc_keys: ["org_a:r1", "org_a:r2", "org_b:r1"] })
        })
        expect(JSON.parse(batch.body).documents.map((d: any) => d.doc_key)).toEqual(["org_b:r1"])
        const prefixed = yield* http(`/sync/v1/topics/${runs}/documents?doc_key_prefix=org_a%3A`)
        expect(JSON.parse(prefixed.body).documents).toEqual([])
        // a key no document can have (Postgres text holds no U+0000) is absent, not a database failure
        expect((yield* http(`/sync/v1/topics/${runs}/documents/org_b%3Ar1%00`)).status).toBe(404)
        expect((yield* http(`/sync/v1/topics/${runs}/documents?doc_key_prefix=org_b%00`)).status).toBe(400)
        const nul = yield* http(`/sync/v1/topics/${runs}/documents:batchGet`, {
          method: "POST",
          body: JSON.stringify({ doc_keys: ["org_b:r1\u0000", "org_b:r2"] })
        })
        expect(JSON.parse(nul.body).documents.map((d: any) => d.doc_key)).toEqual(["org_b:r2"])
        const replayed = yield* http(`/sync/v1/topics/${runs}/documents?cursor=${listing.next_cursor}`)
        for (const d of JSON.parse(replayed.body).documents ?? []) expect(orgOfKey(d.doc_key)).toBe("org_b")

        // the server still serves: a fresh socket and the neighbour's heartbeat
        expect((yield* neighbour.heartbeat).status).toBe("ok")
        expect((yield* upgradeOutcome({ port: server.port, token: orgA })).status).toBe("open")

        console.log(
          `fuzz (seed ${seed}): ${counts.frames} hostile frames over ${counts.sockets} sockets ` +
            `(closes ${
              JSON.stringify(Object.fromEntries(counts.closes))
            }), ${counts.refusedUpgrades} refused upgrades, ` +
            `${counts.requests} hostile HTTP requests (statuses ${JSON.stringify(Object.fromEntries(statuses))}), ` +
            `${published.length} rows to the neighbour`
        )
        expect(counts.frames).toBeGreaterThanOrEqual(10_000)
        expect(counts.requests).toBeGreaterThanOrEqual(1000)
      })),
    { timeout: 180_000 }
  )
})
