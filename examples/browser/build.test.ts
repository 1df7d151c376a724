/**
 * The example page's script builds against `khala/client` and stays a small bundle; and, in headless chromium against
 * the example runtime (examples/runtime) on another origin, the page loads the runtime's runs by hydration over HTTP
 * and then shows a change made through the runtime's API, live.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { createServer } from "node:http"
import { browserAvailable, launch } from "../../test/support/Chromium.js"
import { runtimeToken, startRuntime } from "../../test/support/ExampleRuntime.js"
import { postgresAvailable, testDatabase } from "../../test/support/Postgres.js"
import { buildApp, serveFile } from "./build.js"

/** This folder on loopback, for the scope: its origin. */
const servePage = Effect.acquireRelease(
  Effect.promise(async () => {
    const server = createServer(serveFile)
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
    const address = server.address()
    return { server, origin: `http://127.0.0.1:${typeof address === "object" && address !== null ? address.port : 0}` }
  }),
  ({ server }) => Effect.promise(() => new Promise<void>((resolve) => server.close(() => resolve())))
)

describe("browser example", () => {
  it("builds", async () => {
    const bytes = await buildApp()
    expect(bytes).toBeGreaterThan(10_000)
    expect(bytes).toBeLessThan(120 * 1024)
  }, 90_000)

  it.live.skipIf(!postgresAvailable || !browserAvailable)(
    "hydrates the example runtime's runs from another origin, then follows them live",
    () =>
      Effect.scoped(Effect.gen(function*() {
        yield* Effect.promise(() => buildApp())
        const { origin } = yield* servePage
        const db = yield* testDatabase
        const runtime = yield* startRuntime(db.url, { EXAMPLE_CORS_ORIGINS: origin })
        const created = yield* runtime.call("POST", "/runs", { org_id: "org_a", name: "build" })
        expect(created.status, runtime.output()).toBe(201)
        const token = yield* runtimeToken("org_a", ["example.runs"])

        const { context } = yield* launch
        const page = yield* Effect.promise(() => context.newPage())
        const requests: Array<string> = []
        page.on("request", (request) => requests.push(`${request.method()} ${request.url()}`))
        yield* Effect.promise(() => page.goto(`${origin}/#${new URLSearchParams({ server: runtime.url, token })}`))
        yield* Effect.promise(() => page.waitForSelector("td.status[data-value=\"queued\"]", { timeout: 60_000 }))
        // the first visit listed the topic over HTTP (not a replay of its journal)
        expect(requests).toContain(`GET ${runtime.url}/sync/v1/topics/example.runs/documents?limit=500`)
        yield* Effect.promise(() => page.waitForSelector("#status[data-status=\"live\"]", { timeout: 60_000 }))

        expect((yield* runtime.call("PUT", `/runs/${created.body.id}`, { status: "running" })).status).toBe(200)
        yield* Effect.promise(() => page.waitForSelector("td.status[data-value=\"running\"]", { timeout: 60_000 }))
        expect(yield* Effect.promise(() => page.locator("#runs tr").count())).toBe(1)
      })),
    { timeout: 270_000 }
  )
})
