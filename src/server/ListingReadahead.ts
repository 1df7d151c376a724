/**
 * Reading ahead of a listing (protocol.md §6): once a page is answered with a `next_cursor`, the page after it is
 * read while the client takes this one in, so that the client's parsing and the database's reading overlap instead
 * of taking turns. A page read ahead is read after the listing's snapshot watermark, as every page is, so it keeps
 * the snapshot rule; it is served once, and only to a request for the same page of the same org and topic, after
 * that request's token and scopes were checked like any other's.
 *
 * Bounded: at most `budgetBytes` of pages (each counted at the page limit) are read ahead or waiting at once, and a
 * page nobody asks for within `timeToLive` is dropped.
 */
import { Context, Duration, Effect, Exit, Fiber, FiberSet, Layer } from "effect"
import type { DocumentPage, ListOptions } from "../services/Documents.js"
import { Documents } from "../services/Documents.js"
import type { StorageError } from "../services/StorageError.js"
import type { UnknownTopic } from "../services/Topic.js"
import { ServerConfig } from "./ServerConfig.js"

/** Bytes of pages read ahead at once, each counted at the page limit. */
export const budgetBytes = 16 * 1024 * 1024
/** How long a page read ahead waits for its request. */
export const timeToLive = Duration.seconds(10)

export class ListingReadahead extends Context.Tag("khala/ListingReadahead")<ListingReadahead, {
  /** The page `options` names: the one read ahead for it, if any (and it was read), else read now. */
  readonly page: (options: ListOptions) => Effect.Effect<DocumentPage, UnknownTopic | StorageError>
  /** Starts reading the page `options` names, when the budget has room for it. */
  readonly readAhead: (options: ListOptions) => Effect.Effect<void>
}>() {}

/** A page read ahead: the number of the read, and the fiber reading it. */
interface Ahead {
  readonly read: number
  readonly fiber: Fiber.RuntimeFiber<Exit.Exit<DocumentPage, UnknownTopic | StorageError>>
}

const keyOf = (options: ListOptions) =>
  JSON.stringify([
    options.topic,
    options.orgId,
    options.docKeyPrefix ?? null,
    options.afterKey ?? null,
    options.limit,
    options.maxBytes ?? null,
    options.maxPayloadBytes ?? null
  ])

export const make = Effect.gen(function*() {
  const documents = yield* Documents
  const config = yield* ServerConfig
  const capacity = Math.floor(budgetBytes / config.hydrationPageBytes)
  const fibers = yield* FiberSet.make()
  const ahead = new Map<string, Ahead>()
  let reads = 0

  const readAhead = (options: ListOptions): Effect.Effect<void> =>
    Effect.suspend(() => {
      const key = keyOf(options)
      if (ahead.size >= capacity || ahead.has(key)) return Effect.void
      const read = ++reads
      return Effect.gen(function*() {
        ahead.set(key, { read, fiber: yield* FiberSet.run(fibers, Effect.exit(documents.list(options))) })
        // holds the read's number, not its page: a page served is garbage at once
        yield* FiberSet.run(
          fibers,
          Effect.sleep(timeToLive).pipe(Effect.andThen(() => {
            if (ahead.get(key)?.read === read) ahead.delete(key)
          }))
        )
      })
    })

  const page = (options: ListOptions) =>
    Effect.suspend(() => {
      const key = keyOf(options)
      const fiber = ahead.get(key)?.fiber
      if (fiber === undefined) return documents.list(options)
      ahead.delete(key)
      // a read ahead that failed (or was cut short) is read again, and fails as this request's own read would
      return Effect.flatMap(
        Fiber.await(fiber),
        (exit) => Exit.isSuccess(exit) && Exit.isSuccess(exit.value) ? exit.value : documents.list(options)
      )
    })

  return ListingReadahead.of({ page, readAhead })
})

/** Reading ahead, pages counted at `ServerConfig.hydrationPageBytes`: none when one page is over the budget. */
export const layer: Layer.Layer<ListingReadahead, never, Documents | ServerConfig> = Layer.scoped(
  ListingReadahead,
  make
)
