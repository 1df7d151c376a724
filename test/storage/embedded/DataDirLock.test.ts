import { describe, expect, it } from "@effect/vitest"
import { execFile } from "node:child_process"
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, resolve } from "node:path"
import { promisify } from "node:util"
import * as DataDirLock from "../../../src/storage/embedded/DataDirLock.js"

const run = promisify(execFile)
const built = resolve("dist/storage/embedded/DataDirLock.js")

/** Another process that tries to take the lock, prints whether it won, and holds it for `holdMs`. */
const contender = (dir: string, holdMs: number) =>
  run(process.execPath, [
    "--input-type=module",
    "-e",
    `const lock = await import(${JSON.stringify(built)})
     try { lock.acquire(${JSON.stringify(dir)}); console.log("won") } catch { console.log("refused") }
     await new Promise((r) => setTimeout(r, ${holdMs}))`
  ]).then(({ stdout }) => stdout.trim())

const freshDir = () => mkdtempSync(join(tmpdir(), "khala-lock-"))

/** A lock file as a process that has died left it. */
const leaveDeadLock = (dir: string, owner: Partial<DataDirLock.Owner>) =>
  writeFileSync(join(dir, "khala.lock.1"), JSON.stringify({ ...DataDirLock.self(), start: "1", ...owner }))

describe("the embedded database's data directory lock", () => {
  it("a dead owner that had this process's pid (pid 1 in every container) does not keep it from starting", () => {
    const dir = freshDir()
    leaveDeadLock(dir, { pid: process.pid })
    const generation = DataDirLock.acquire(dir)
    expect(generation).toBe(2)
    expect(readdirSync(dir).filter((name) => name.startsWith("khala.lock."))).toEqual(["khala.lock.2"])
    DataDirLock.release(dir, generation)
    expect(readdirSync(dir)).toEqual([])
  })

  it("a running owner keeps it, in another process and in this one", async () => {
    const dir = freshDir()
    const holder = contender(dir, 3000)
    // the other process holds the lock once its lock file is there (its start takes a while on a busy machine)
    for (let waited = 0; !readdirSync(dir).some((name) => name.startsWith("khala.lock.")); waited += 20) {
      if (waited > 20_000) throw new Error("the other process never took the lock")
      await new Promise((r) => setTimeout(r, 20))
    }
    expect(() => DataDirLock.acquire(dir)).toThrow(/in use by process \d+/)
    expect(await holder).toBe("won")
    const generation = DataDirLock.acquire(dir)
    expect(() => DataDirLock.acquire(dir)).toThrow(DataDirLock.InUse)
    DataDirLock.release(dir, generation)
  }, 90_000)

  it("of several processes taking over a dead owner's lock at once, exactly one wins", async () => {
    for (let round = 0; round < 2; round++) {
      const dir = freshDir()
      leaveDeadLock(dir, { pid: 999_999 })
      const results = await Promise.all(Array.from({ length: 5 }, () => contender(dir, 1500)))
      expect(results.filter((r) => r === "won")).toHaveLength(1)
      expect(results.filter((r) => r === "refused")).toHaveLength(4)
    }
  }, 180_000)
})
