/** The browser client stays within its size budget (the figure itself is in `npm run bench`, scenario `bundle`). */
import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { facadeBudgetBytes, facadeBundleSize } from "../../bench/bundle.js"

describe("browser bundle", () => {
  it.live("createClient with the IndexedDB store is at most 40 KiB minified and gzipped", () =>
    Effect.gen(function*() {
      const size = yield* facadeBundleSize
      expect(size.gzippedBytes).toBeGreaterThan(1024)
      expect(size.gzippedBytes).toBeLessThanOrEqual(facadeBudgetBytes)
    }), { timeout: 90_000 })
})
