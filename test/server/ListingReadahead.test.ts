/**
 * A page read ahead is served once, only for the very page it is, while it is fresh, within the budget; a read
 * ahead that failed is read again rather than failing the request.
 */
import { describe, expect, it } from "@effect/vitest"
import { Effect, Fiber, Layer, Option, TestClock } from "effect"
import * as ListingReadahead from "../../src/server/ListingReadahead.js"
import * as ServerConfig from "../../src/server/ServerConfig.js"
import type { DocumentPage, ListOptions } from "../../src/services/Documents.js"
import { Documents } from "../../src/services/Documents.js"
import { StorageError } from "../../src/services/StorageError.js"

/** Documents whose every listing is a new page (its watermark counts the reads), failing while `failing` says so. */
const countingDocuments = () => {
  const reads: Array<ListOptions> = []
  const state = { failing: false }
  const documents = Documents.of({
    get: () => Effect.die("unused"),
    getMany: () => Effect.die("unused"),
    list: (options) =>
      Effect.suspend(() => {
        reads.push(options)
        if (state.failing) return Effect.fail(new StorageError({ message: "down" }))
        const page: DocumentPage = { documents: [], watermark: reads.length, epoch: "e", nextKey: Option.none() }
        return Effect.succeed(page)
      })
  })
  return { reads, state, layer: Layer.succeed(Documents, documents) }
}

const pageOf = (orgId: string, afterKey: string): ListOptions => ({ topic: "t", orgId, afterKey, limit: 100 })

const withReadahead = <A, E>(
  documents: Layer.Layer<Documents>,
  f: (readahead: ListingReadahead.ListingReadahead["Type"]) => Effect.Effect<A, E>,
  pageBytes = 4 * 1024 * 1024
) =>
  Effect.flatMap(ListingReadahead.ListingReadahead, f).pipe(
    Effect.provide(
      ListingReadahead.layer.pipe(
        Layer.provide(documents),
        Layer.provide(ServerConfig.layer({ hydrationPageBytes: pageBytes }))
      )
    )
  )

describe("ListingReadahead", () => {
  it.scoped("a page read ahead is served once, to the same page of the same org", () => {
    const { reads, layer } = countingDocuments()
    return withReadahead(layer, (readahead) =>
      Effect.gen(function*() {
        yield* readahead.readAhead(pageOf("org_a", "k"))
        yield* Effect.yieldNow()
        // another org's request for the same cursor is its own read
        expect((yield* readahead.page(pageOf("org_b", "k"))).watermark).toBe(2)
        expect((yield* readahead.page(pageOf("org_a", "k"))).watermark).toBe(1)
        // served once: asked again, the page is read again
        expect((yield* readahead.page(pageOf("org_a", "k"))).watermark).toBe(3)
        expect(reads.map((r) => r.orgId)).toEqual(["org_a", "org_b", "org_a"])
      }))
  })

  it.scoped("a page nobody asks for within its time to live is dropped", () => {
    const { reads, layer } = countingDocuments()
    return withReadahead(layer, (readahead) =>
      Effect.gen(function*() {
        yield* readahead.readAhead(pageOf("org_a", "k"))
        yield* Effect.yieldNow()
        yield* TestClock.adjust(ListingReadahead.timeToLive)
        expect((yield* readahead.page(pageOf("org_a", "k"))).watermark).toBe(2)
        expect(reads).toHaveLength(2)
      }))
  })

  it.scoped("no more pages are read ahead than the budget holds at the page limit", () => {
    const { reads, layer } = countingDocuments()
    const pageBytes = ListingReadahead.budgetBytes / 2
    return withReadahead(layer, (readahead) =>
      Effect.gen(function*() {
        for (const key of ["a", "b", "c", "a"]) yield* readahead.readAhead(pageOf("org_a", key))
        yield* Effect.yieldNow()
        expect(reads.map((r) => r.afterKey)).toEqual(["a", "b"])
        // a page served makes room for the next
        yield* readahead.page(pageOf("org_a", "a"))
        yield* readahead.readAhead(pageOf("org_a", "c"))
        yield* Effect.yieldNow()
        expect(reads.map((r) => r.afterKey)).toEqual(["a", "b", "c"])
      }), pageBytes)
  })

  it.scoped("a page over the budget is never read ahead", () => {
    const { reads, layer } = countingDocuments()
    return withReadahead(layer, (readahead) =>
      Effect.gen(function*() {
        yield* readahead.readAhead(pageOf("org_a", "k"))
        yield* Effect.yieldNow()
        expect(reads).toHaveLength(0)
        expect((yield* readahead.page(pageOf("org_a", "k"))).watermark).toBe(1)
      }), ListingReadahead.budgetBytes + 1)
  })

  it.scoped("a read ahead that failed is read again for the request, which gets that read's answer", () => {
    const { reads, state, layer } = countingDocuments()
    return withReadahead(layer, (readahead) =>
      Effect.gen(function*() {
        state.failing = true
        yield* readahead.readAhead(pageOf("org_a", "k"))
        yield* Effect.yieldNow()
        state.failing = false
        expect((yield* readahead.page(pageOf("org_a", "k"))).watermark).toBe(2)
        state.failing = true
        yield* readahead.readAhead(pageOf("org_a", "k"))
        const failed = yield* Effect.fork(Effect.flip(readahead.page(pageOf("org_a", "k"))))
        expect((yield* Fiber.join(failed))._tag).toBe("StorageError")
        expect(reads).toHaveLength(4)
      }))
  })
})
