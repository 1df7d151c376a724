/** The example page's script builds against `khala/client` and stays a small bundle. */
import { describe, expect, it } from "@effect/vitest"
import { buildApp } from "./build.js"

describe("browser example", () => {
  it("builds", async () => {
    const bytes = await buildApp()
    expect(bytes).toBeGreaterThan(10_000)
    expect(bytes).toBeLessThan(120 * 1024)
  }, 30_000)
})
