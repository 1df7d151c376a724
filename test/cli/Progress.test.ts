/**
 * The progress line of long commands (src/cli/Progress.ts), without a terminal: the line a state reads as, and the
 * redraws on a terminal given to the command, every half second from the latest report, erased at the end; nothing
 * at all when the output is not a terminal, nor for an operation quicker than the first redraw.
 */
import { describe, expect, it } from "@effect/vitest"
import { Deferred, Duration, Effect, Fiber, Option, TestClock } from "effect"
import { describeMigration } from "../../src/cli/Migrate.js"
import * as Progress from "../../src/cli/Progress.js"
import { describeRetention } from "../../src/cli/Retention.js"
import * as Retention from "../../src/engine/Retention.js"
import { migrations } from "../../src/storage/postgres/Migrations.js"

const erase = "\r\x1b[K"

/** A terminal (or not) that keeps what is written to it. */
const fakeTerminal = (isTTY: boolean, columns?: number) => {
  const written: Array<string> = []
  const terminal: Progress.ProgressTerminal = { isTTY, columns, write: (text) => void written.push(text) }
  return { terminal, written }
}

/**
 * Runs a tracked operation that reports what the test gives it and ends when told; the test drives the clock.
 */
const driven = (terminal: Progress.ProgressTerminal) =>
  Effect.gen(function*() {
    const reporter = yield* Deferred.make<(state: number) => Effect.Effect<void>>()
    const finish = yield* Deferred.make<void>()
    const fiber = yield* Progress.withProgress(
      { label: "counting", initial: 0, describe: (n) => (n === 0 ? "" : `${n} done`) },
      (report) => Effect.zipRight(Deferred.succeed(reporter, report), Deferred.await(finish))
    ).pipe(Effect.provideService(Progress.Terminal, terminal), Effect.fork)
    const report = yield* Deferred.await(reporter)
    return { report, end: Effect.zipRight(Deferred.succeed(finish, undefined), Fiber.join(fiber)) }
  })

describe("the progress line", () => {
  it("reads label, whole seconds elapsed, and what the operation reported", () => {
    expect(Progress.progressLine("running retention", Duration.millis(400), "")).toBe("running retention… 0s")
    expect(Progress.progressLine("running retention", Duration.millis(65_900), "3 rows removed in 1 batches"))
      .toBe("running retention… 1m 5s: 3 rows removed in 1 batches")
    // never wider than the terminal: a wrapped line could not be erased by the next redraw
    const cut = Progress.progressLine("running retention", Duration.seconds(3), "x".repeat(100), 40)
    expect(cut).toHaveLength(39)
    expect(cut.endsWith("…")).toBe(true)
  })

  it("says what retention removed, in how many batches, over how many topics, and what it prunes now", () => {
    expect(describeRetention(Retention.noProgress)).toBe("0 rows removed in 0 batches")
    expect(describeRetention({
      topics: 4,
      topicsDone: 1,
      pruning: Option.some("runtime.run_summaries"),
      rowsRemoved: 1_234_567,
      batches: 124
    })).toBe("1,234,567 rows removed in 124 batches, 1 of 4 topics done, pruning runtime.run_summaries")
  })

  it("says which migration of how many runs, or that another process holds the lock", () => {
    expect(describeMigration(undefined)).toBe("")
    expect(describeMigration({ _tag: "Locking" })).toBe(
      "waiting for the migration lock (another process is migrating)"
    )
    expect(describeMigration({ _tag: "Applying", index: 2, count: 6, migration: migrations[1]! })).toBe(
      "migration 2 of 6: 2_faster_publishing"
    )
  })
})

describe("withProgress", () => {
  it.effect("on a terminal: redrawn every 500 ms from the latest report, erased when the operation ends", () =>
    Effect.gen(function*() {
      const { terminal, written } = fakeTerminal(true)
      const { end, report } = yield* driven(terminal)
      yield* TestClock.adjust("499 millis")
      expect(written).toEqual([])
      yield* TestClock.adjust("1 millis")
      expect(written).toEqual([`${erase}counting… 0s`])
      yield* report(7)
      yield* report(12)
      yield* TestClock.adjust("500 millis")
      expect(written.at(-1)).toBe(`${erase}counting… 1s: 12 done`)
      yield* TestClock.adjust("1 seconds")
      expect(written).toHaveLength(4)
      yield* end
      expect(written.at(-1)).toBe(erase)
      // nothing is drawn after the end
      yield* TestClock.adjust("2 seconds")
      expect(written).toHaveLength(5)
    }))

  it.effect("not a terminal: nothing is written, and the operation reports all the same", () =>
    Effect.gen(function*() {
      const { terminal, written } = fakeTerminal(false)
      const { end, report } = yield* driven(terminal)
      yield* report(3)
      yield* TestClock.adjust("5 seconds")
      yield* end
      expect(written).toEqual([])
    }))

  it.effect("an operation quicker than the first redraw shows nothing, and its failure is its own", () =>
    Effect.gen(function*() {
      const { terminal, written } = fakeTerminal(true)
      const failed = yield* Progress.withProgress(
        { label: "quick", initial: 0, describe: String },
        (report) => Effect.zipRight(report(1), Effect.fail("refused" as const))
      ).pipe(Effect.provideService(Progress.Terminal, terminal), Effect.flip)
      expect(failed).toBe("refused")
      expect(written).toEqual([])
    }))
})
