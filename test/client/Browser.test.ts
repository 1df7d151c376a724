/**
 * The client in a real browser (headless Debian chromium, driven by playwright-core): a page using the bundled client
 * with the IndexedDB store hydrates its first visit over HTTP from another origin (CORS), receives updates, keeps its
 * cache and watermark across a reload, and resumes after exactly what it had persisted: nothing missed, nothing
 * replayed.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { build } from "esbuild"
import { createServer } from "node:http"
import { fileURLToPath } from "node:url"
import type { BrowserContext, Page } from "playwright-core"
import { browserAvailable, launch } from "../support/Chromium.js"
import { range, signToken, sqlPublisher, startKhala } from "../support/Khala.js"
import { postgresAvailable, testDatabase } from "../support/Postgres.js"

const runs = "runtime.run_summaries"

/** The page and its bundle, served on loopback for the scope. */
const servePage = Effect.acquireRelease(
  Effect.promise(async () => {
    const bundle = await build({
      entryPoints: [fileURLToPath(new URL("browser/page.ts", import.meta.url))],
      bundle: true,
      format: "iife",
      platform: "browser",
      write: false,
      logLevel: "silent"
    })
    const script = bundle.outputFiles[0]!.text
    const server = createServer((request, response) => {
      if (request.url?.startsWith("/page.js")) {
        response.writeHead(200, { "content-type": "text/javascript" }).end(script)
      } else {
        response.writeHead(200, { "content-type": "text/html" })
          .end("<!doctype html><title>khala</title><script src=\"/page.js\"></script>")
      }
    })
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const address = server.address()
    return { server, origin: `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}` }
  }),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

interface Report {
  readonly status: string
  readonly synced: boolean
  readonly sizes: Array<number>
  readonly wire: Array<number>
  readonly documents: Record<string, { i: number }>
}

const report = (page: Page) => Effect.promise(() => page.evaluate(() => (globalThis as any).khala as Report))

const waitFor = (page: Page, label: string, predicate: (report: Report) => boolean) =>
  Effect.gen(function*() {
    const deadline = Date.now() + 20_000
    while (true) {
      const current = yield* report(page)
      if (predicate(current)) return current
      if (Date.now() > deadline) {
        return yield* Effect.die(new Error(`timed out waiting for ${label}: ${JSON.stringify(current).slice(0, 2000)}`))
      }
      yield* Effect.sleep("50 millis")
    }
  })

const open = (context: BrowserContext, url: string) =>
  Effect.promise(async () => {
    const page = await context.newPage()
    await page.goto(url)
    return page
  })

describe.skipIf(!postgresAvailable || !browserAvailable)("client in a browser", () => {
  it.live(
    "hydrates cross-origin, receives updates, survives a reload with its IndexedDB cache and watermark, and resumes with nothing missed",
    () =>
      Effect.scoped(Effect.gen(function*() {
        const db = yield* testDatabase
        const { origin } = yield* servePage
        // the page is served from another port than the server: hydration is a cross-origin request
        const { server } = yield* startKhala(db.url, { KHALA_CORS_ORIGINS: origin })
        const sql = yield* sqlPublisher(db.url)
        const { context } = yield* launch
        const token = yield* Effect.promise(() => signToken({ org: "org_a", scopes: [runs] }))
        const url = `${origin}/?server=${encodeURIComponent(server.url(""))}&token=${encodeURIComponent(token)}`
        yield* sql.publishAll(range(1, 10).map((i) => ({ docKey: `r${i}`, payload: { i } })))

        const first = yield* open(context, url)
        const hydrated = yield* waitFor(first, "the first load", (r) => r.synced && r.status === "live")
        // loaded over HTTP: the ten documents are there, and none came over the socket
        expect(Object.keys(hydrated.documents)).toHaveLength(10)
        expect(hydrated.wire).toEqual([])
        yield* sql.publishAll(range(11, 20).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        const seen = yield* waitFor(first, "20 documents", (r) => Object.keys(r.documents).length === 20)
        expect(seen.wire).toEqual(range(11, 20))
        yield* Effect.promise(() => first.close())

        // published while no page is open
        yield* sql.publishAll(range(21, 30).map((i) => ({ docKey: `r${i}`, payload: { i } })))
        const second = yield* open(context, url)
        const resumed = yield* waitFor(
          second,
          "30 documents",
          (r) => r.synced && Object.keys(r.documents).length === 30
        )
        // the first thing the page showed was its IndexedDB cache, before the server said anything
        expect(resumed.sizes[0]).toBe(20)
        // and the server sent exactly what the cache lacked
        expect(resumed.wire).toEqual(range(21, 30))
        expect(
          range(1, 30).every((i) => resumed.documents[`r${i}`]?.i === i)
        ).toBe(true)

        // a reload, live updates after it
        yield* Effect.promise(() => second.reload())
        yield* waitFor(second, "the reloaded page live", (r) => r.synced && r.status === "live")
        yield* sql.publish({ docKey: "r31", payload: { i: 31 } })
        const reloaded = yield* waitFor(second, "31 documents", (r) => Object.keys(r.documents).length === 31)
        expect(reloaded.sizes[0]).toBe(30)
        expect(reloaded.wire).toEqual([31])
      })),
    { timeout: 270_000 }
  )
})
