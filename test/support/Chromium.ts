/** Headless Debian chromium, driven by playwright-core, for the browser tests: a persistent context for the scope. */
import { Effect } from "effect"
import { existsSync, mkdtempSync, rmSync } from "node:fs"
import { tmpdir } from "node:os"
import { join } from "node:path"
import { chromium } from "playwright-core"

export const chromiumPath = "/usr/bin/chromium"

/** In CI a missing browser is a failure (.ci/run installs it); elsewhere the browser tests are skipped. */
export const browserAvailable = existsSync(chromiumPath) || process.env["CI"] === "true"

/** A browser with a profile of its own (so IndexedDB persists across the pages of one test), closed with the scope. */
export const launch = Effect.acquireRelease(
  Effect.promise(async () => {
    const userDataDir = mkdtempSync(join(tmpdir(), "khala-chromium-"))
    const context = await chromium.launchPersistentContext(userDataDir, {
      executablePath: chromiumPath,
      headless: true,
      args: [
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-quic",
        "--no-first-run",
        "--disable-component-update",
        "--disable-sync"
      ]
    })
    return { context, userDataDir }
  }),
  ({ context, userDataDir }) =>
    Effect.promise(async () => {
      await context.close()
      rmSync(userDataDir, { recursive: true, force: true })
    })
)
