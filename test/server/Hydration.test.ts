/**
 * HTTP hydration (protocol.md §6) served in process by the hydration routes over a real database: paging with one
 * snapshot watermark, one document with its ETag, batches, tenancy, limits and errors, CORS; and the snapshot rule
 * under concurrent writers, on Postgres and on the embedded database.
 */
import { HttpServer } from "@effect/platform"
import { NodeHttpServer } from "@effect/platform-node"
import { describe, expect, it } from "@effect/vitest"
import type { Scope } from "effect"
import { Effect, Fiber, Layer, Option, Ref, Stream } from "effect"
import { createServer } from "node:http"
import type { AddressInfo } from "node:net"
import * as AuthJose from "../../src/auth/AuthJose.js"
import type { KhalaServices } from "../../src/layers/Core.js"
import * as KhalaPg from "../../src/layers/KhalaPg.js"
import type { TopicCatalog } from "../../src/protocol/TopicCatalog.js"
import * as Hydration from "../../src/server/Hydration.js"
import * as ListingReadahead from "../../src/server/ListingReadahead.js"
import type { ServerSettings } from "../../src/server/ServerConfig.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import { HeadSignals } from "../../src/services/HeadSignals.js"
import { Audience, Hub } from "../../src/services/Hub.js"
import { Publisher } from "../../src/services/Publisher.js"
import type { Revocations } from "../../src/services/Revocations.js"
import type { TokenVerifier } from "../../src/services/TokenVerifier.js"
import { TokenSigner } from "../../src/services/TokenVerifier.js"
import * as EmbeddedPostgres from "../../src/storage/embedded/EmbeddedPostgres.js"
import { layerDatabase, postgresAvailable, testDatabase } from "../support/Postgres.js"

const runs = "runtime.run_summaries"
const keys = [{ kid: "k1", secret: new TextEncoder().encode("hydration-test-secret-0123456789abcdef") }] as const

type Khala = KhalaServices | Revocations | TopicCatalog | TokenSigner | TokenVerifier

const databases: ReadonlyArray<{
  readonly name: string
  readonly available: boolean
  readonly layer: Layer.Layer<KhalaServices | Revocations | TopicCatalog, never, Scope.Scope>
}> = [
  {
    name: "postgres",
    available: postgresAvailable,
    layer: Layer.unwrapScoped(Effect.map(testDatabase, ({ url }) =>
      KhalaPg.layerWith().pipe(
        Layer.provide(HeadSignals.none),
        Layer.provide(layerDatabase(url, { maxConnections: 12 })),
        Layer.orDie
      )))
  },
  {
    name: "embedded",
    available: true,
    layer: KhalaPg.layerWith().pipe(Layer.provide(EmbeddedPostgres.layerInMemory), Layer.orDie)
  }
]

/** The hydration routes on an HTTP server of their own, on a free port; returns a `fetch` bound to it. */
const serve = (settings: Partial<ServerSettings> = {}) =>
  Effect.gen(function*() {
    const server = createServer()
    yield* Layer.build(
      HttpServer.serve(Hydration.router).pipe(
        Layer.provide(ListingReadahead.layer),
        Layer.provideMerge(ServerConfig.layer(settings)),
        Layer.provide(NodeHttpServer.layer(() => server, { host: "127.0.0.1", port: 0 }))
      )
    ).pipe(Effect.orDie)
    const { port } = server.address() as AddressInfo
    const token = (org: string, scopes: ReadonlyArray<string> = [runs]) =>
      Effect.flatMap(TokenSigner, (signer) => signer.sign({ subject: "u", orgId: org, scopes, ttlSeconds: 600 }))
    const call = (path: string, init: RequestInit & { readonly token?: string } = {}) =>
      Effect.promise(async () => {
        const response = await fetch(`http://127.0.0.1:${port}${path}`, {
          ...init,
          headers: {
            ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
            ...(init.headers as Record<string, string> | undefined)
          }
        })
        const text = await response.text()
        return { status: response.status, headers: response.headers, body: text === "" ? undefined : JSON.parse(text) }
      })
    return { call, token }
  })

const withServices = <A, E>(
  database: Layer.Layer<KhalaServices | Revocations | TopicCatalog, never, Scope.Scope>,
  effect: Effect.Effect<A, E, Khala | Scope.Scope>
) => Effect.scoped(Effect.provide(effect, Layer.merge(database, AuthJose.layer(keys))))

const publish = (docKey: string, docVersion: number, payload: unknown, orgId = "org_a") =>
  Effect.flatMap(Publisher, (p) => p.publish({ topic: runs, docKey, docVersion, orgId, payload }))

const documentsPath = `/sync/v1/topics/${runs}/documents`

describe.each(databases)("hydration over HTTP: $name", ({ available, layer }) => {
  it.live.skipIf(!available)(
    "pages with one snapshot, one document with its ETag, batches, and the errors",
    () =>
      withServices(
        layer,
        Effect.gen(function*() {
          const { call, token } = yield* serve({ corsOrigins: ["https://app.example"] })
          for (let i = 1; i <= 5; i++) yield* publish(`org_a:run_${i}`, 1, { i })
          yield* publish("org_a:big", 1, { text: "x".repeat(300 * 1024) })
          yield* publish("org_b:run_1", 1, { secret: true }, "org_b")
          yield* publish("org_a:run_1", 2, { i: 1, again: true })
          yield* Effect.flatMap(
            Publisher,
            (p) => p.remove({ topic: runs, docKey: "org_a:run_5", docVersion: 2, orgId: "org_a" })
          )
          const a = yield* token("org_a")

          const first = yield* call(`${documentsPath}?limit=2&doc_key_prefix=org_a:run_`, { token: a })
          expect(first.status).toBe(200)
          expect(first.body).toMatchObject({ topic: runs, snapshot_watermark: 9 })
          expect(first.body.documents.map((d: any) => [d.doc_key, d.doc_version])).toEqual([["org_a:run_1", 2], [
            "org_a:run_2",
            1
          ]])
          yield* publish("org_a:run_3", 2, { i: 3, later: true })
          const second = yield* call(`${documentsPath}?limit=10&cursor=${first.body.next_cursor}`, { token: a })
          // the same snapshot on every page; later versions are fine (the client applies by version); tombstones skipped
          expect(second.body.snapshot_watermark).toBe(9)
          expect(second.body.documents.map((d: any) => [d.doc_key, d.doc_version])).toEqual([["org_a:run_3", 2], [
            "org_a:run_4",
            1
          ]])
          expect(second.body.next_cursor).toBeNull()

          const listed = yield* call(documentsPath, { token: a })
          const big = listed.body.documents.find((d: any) => d.doc_key === "org_a:big")
          expect(big).toMatchObject({ payload: null, hydration_required: true })
          expect(listed.body.documents.some((d: any) => d.doc_key.startsWith("org_b"))).toBe(false)

          const one = yield* call(`${documentsPath}/${encodeURIComponent("org_a:big")}`, { token: a })
          expect(one.body).toMatchObject({ doc_key: "org_a:big", payload: { text: "x".repeat(300 * 1024) } })
          const etag = one.headers.get("etag")!
          expect(etag).toBe(`"${one.body.payload_hash}"`)
          expect(
            (yield* call(`${documentsPath}/${encodeURIComponent("org_a:big")}`, {
              token: a,
              headers: { "if-none-match": etag }
            })).status
          ).toBe(304)
          // another org's document, a deleted one and a missing one are the same 404 (I7)
          for (const key of ["org_b:run_1", "org_a:run_5", "org_a:nope"]) {
            expect(yield* call(`${documentsPath}/${encodeURIComponent(key)}`, { token: a })).toMatchObject({
              status: 404,
              body: { code: "not_found" }
            })
          }

          const batch = yield* call(`${documentsPath}:batchGet`, {
            token: a,
            method: "POST",
            body: JSON.stringify({ doc_keys: ["org_a:run_2", "org_b:run_1", "org_a:run_5", "org_a:big", "nope"] })
          })
          expect(batch.body.documents.map((d: any) => [d.doc_key, d.hydration_required])).toEqual([
            ["org_a:big", true],
            ["org_a:run_2", false]
          ])

          expect(yield* call(documentsPath)).toMatchObject({ status: 401, body: { code: "unauthorized" } })
          expect(yield* call(documentsPath, { token: "not.a.token" })).toMatchObject({ status: 401 })
          const notificationsOnly = yield* token("org_a", ["runtime.notifications"])
          expect(yield* call(documentsPath, { token: notificationsOnly })).toMatchObject({
            status: 403,
            body: { code: "forbidden_topic", forbidden_topics: [runs] }
          })
          expect((yield* call(`${documentsPath}?limit=-3`, { token: a })).status).toBe(400)
          expect(yield* call(`${documentsPath}?cursor=garbage`, { token: a })).toMatchObject({
            status: 400,
            body: { code: "bad_subscription" }
          })
          const tooMany = JSON.stringify({ doc_keys: Array.from({ length: 1001 }, (_, i) => `k${i}`) })
          expect((yield* call(`${documentsPath}:batchGet`, { token: a, method: "POST", body: tooMany })).status).toBe(
            400
          )

          const preflight = yield* call(documentsPath, {
            method: "OPTIONS",
            headers: { origin: "https://app.example" }
          })
          expect(preflight.status).toBe(204)
          expect(preflight.headers.get("access-control-allow-origin")).toBe("https://app.example")
          expect(preflight.headers.get("access-control-allow-headers")).toContain("authorization")
          const elsewhere = yield* call(documentsPath, {
            method: "OPTIONS",
            headers: { origin: "https://evil.example" }
          })
          expect(elsewhere.headers.get("access-control-allow-origin")).toBeNull()
          const cors = yield* call(documentsPath, { token: a, headers: { origin: "https://app.example" } })
          expect(cors.headers.get("access-control-allow-origin")).toBe("https://app.example")
        })
      ),
    { timeout: 180_000 }
  )

  it.live.skipIf(!available)(
    "a client that pages slowly while 8 writers update and create, then resumes from the snapshot, holds the read model",
    () =>
      withServices(
        layer,
        Effect.gen(function*() {
          const { call, token } = yield* serve()
          for (let i = 0; i < 60; i++) yield* publish(`org_a:doc_${i}`, 1, { i, v: 1 })
          const writing = yield* Ref.make(true)
          const versions = new Map<string, number>()
          const writer = (w: number) =>
            Effect.gen(function*() {
              let n = 0
              while ((yield* Ref.get(writing)) && n < 40) {
                const key = n % 3 === 0 ? `org_a:new_${w}_${n}` : `org_a:doc_${(w * 7 + n) % 60}`
                const version = (versions.get(key) ?? 1) + 1
                versions.set(key, version)
                yield* publish(key, version, { key, version })
                n++
                yield* Effect.sleep("2 millis")
              }
            })
          const writers = yield* Effect.forEach(Array.from({ length: 8 }, (_, w) => w), (w) => Effect.fork(writer(w)))
          // load every page, slowly, while the writers go on
          const a = yield* token("org_a")
          const client = new Map<string, { version: number; payload: unknown }>()
          const apply = (key: string, version: number, payload: unknown, deleted: boolean) => {
            const held = client.get(key)
            if (held !== undefined && held.version >= version) return
            if (deleted) client.delete(key)
            else client.set(key, { version, payload })
          }
          let cursor: string | null = null
          let snapshot = -1
          do {
            const page: any = (yield* call(`${documentsPath}?limit=7${cursor === null ? "" : `&cursor=${cursor}`}`, {
              token: a
            })).body
            if (snapshot === -1) snapshot = page.snapshot_watermark
            expect(page.snapshot_watermark).toBe(snapshot)
            for (const d of page.documents) apply(d.doc_key, d.doc_version, d.payload, d.deleted)
            cursor = page.next_cursor
            yield* Effect.sleep("20 millis")
          } while (cursor !== null)
          yield* Ref.set(writing, false)
          yield* Fiber.joinAll(writers)
          // resume from the snapshot, applying by version, until caught up with the head
          const head = Option.getOrThrow(
            yield* Effect.flatMap(Publisher, (p) =>
              p.publish({ topic: runs, docKey: "org_a:last", docVersion: 1, orgId: "org_a", payload: {} }))
              .pipe(Effect.map((o) =>
                o._tag === "Appended" ? Option.some(o.watermark) : Option.none()
              ))
          )
          yield* Effect.flatMap(Hub, (hub) =>
            hub.subscribe({ topic: runs, after: snapshot, audience: Audience.org("org_a"), batchSize: 100 }).pipe(
              Stream.takeUntil((batch) =>
                batch.through >= head
              ),
              Stream.runForEach((batch) =>
                Effect.sync(() => {
                  for (const row of batch.updates) apply(row.docKey, row.docVersion, row.payload, row.deleted)
                })
              )
            ))
          // the stitched state is exactly the read model, as a fresh listing shows it
          const model = new Map<string, { version: number; payload: unknown }>()
          cursor = null
          do {
            const page: any = (yield* call(`${documentsPath}?limit=1000${cursor === null ? "" : `&cursor=${cursor}`}`, {
              token: a
            })).body
            for (const d of page.documents) model.set(d.doc_key, { version: d.doc_version, payload: d.payload })
            cursor = page.next_cursor
          } while (cursor !== null)
          expect(model.size).toBeGreaterThan(60)
          expect(new Map([...client].sort())).toEqual(new Map([...model].sort()))
        })
      ),
    { timeout: 360_000 }
  )
})
