import { describe, expect, it } from "@effect/vitest"
import { Effect } from "effect"
import { spawnSync } from "node:child_process"
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { tmpdir } from "node:os"
import { join, relative } from "node:path"
import { fileURLToPath } from "node:url"

const root = fileURLToPath(new URL("../../", import.meta.url))
const buf = join(root, "node_modules", ".bin", "buf")

interface Run {
  readonly status: number | null
  readonly output: string
}

const run = (command: string, args: ReadonlyArray<string>, cwd = root): Effect.Effect<Run> =>
  Effect.sync(() => {
    const result = spawnSync(command, args, { cwd, encoding: "utf8" })
    return { status: result.status, output: `${result.stdout ?? ""}${result.stderr ?? ""}${result.error ?? ""}` }
  })

const git = (...args: ReadonlyArray<string>): string | undefined => {
  const result = spawnSync("git", args, { cwd: root, encoding: "utf8" })
  return result.status === 0 ? result.stdout.trim() : undefined
}

/** A scoped temporary directory. */
const tempDir = Effect.acquireRelease(
  Effect.sync(() => mkdtempSync(join(tmpdir(), "khala-proto-"))),
  (dir) => Effect.sync(() => rmSync(dir, { recursive: true, force: true }))
)

const listFiles = (dir: string): ReadonlyArray<string> =>
  readdirSync(dir, { recursive: true, withFileTypes: true })
    .filter((entry) => entry.isFile())
    .map((entry) => relative(dir, join(entry.parentPath, entry.name)))
    .sort()

/**
 * The git revision whose proto/ the working tree must stay wire-compatible with: main when it has
 * one; otherwise HEAD (a branch cut before proto/ reached main); none on a first commit or outside git.
 */
const baseline = (() => {
  const top = git("rev-parse", "--show-toplevel")
  if (top === undefined) return undefined
  const subdir = `${git("rev-parse", "--show-prefix") ?? ""}proto`
  for (const ref of ["main", "origin/main", "HEAD"]) {
    if (git("rev-parse", "--verify", "--quiet", `${ref}:${subdir}`) !== undefined) {
      return { ref, input: `${join(top, ".git")}#ref=${ref},subdir=${subdir}` }
    }
  }
  return undefined
})()

describe("proto contracts", () => {
  it.effect("buf lint reports nothing", () =>
    Effect.gen(function*() {
      const result = yield* run(buf, ["lint"])
      expect(result.output).toBe("")
      expect(result.status).toBe(0)
    }))

  it.scoped("src/protocol/gen is what buf generate produces from proto/", () =>
    Effect.gen(function*() {
      const out = yield* tempDir
      const result = yield* run(buf, ["generate", "--template", "buf.gen.yaml", "--output", out])
      expect(result.output).toBe("")
      expect(result.status).toBe(0)
      const fresh = join(out, "src", "protocol", "gen")
      const committed = join(root, "src", "protocol", "gen")
      const files = listFiles(fresh)
      expect(files.length).toBeGreaterThan(0)
      expect(listFiles(committed), "run `npm run proto:gen`").toStrictEqual(files)
      for (const file of files) {
        expect(readFileSync(join(committed, file), "utf8"), `${file} is stale: run \`npm run proto:gen\``)
          .toBe(readFileSync(join(fresh, file), "utf8"))
      }
    }))

  if (baseline === undefined) {
    it("buf breaking: no baseline (neither main nor HEAD has proto/, e.g. first commit), nothing to compare", () => {
      console.warn("buf breaking skipped: no git revision with proto/ to compare against")
    })
  } else {
    it.effect(`buf breaking against ${baseline.ref} finds no breaking change`, () =>
      Effect.gen(function*() {
        const result = yield* run(buf, ["breaking", "proto", "--against", baseline.input])
        expect(result.output).toBe("")
        expect(result.status).toBe(0)
      }))
  }

  it.scoped("buf breaking catches a renumbered field", () =>
    Effect.gen(function*() {
      const dir = yield* tempDir
      cpSync(join(root, "buf.yaml"), join(dir, "buf.yaml"))
      cpSync(join(root, "proto"), join(dir, "proto"), { recursive: true })
      const file = join(dir, "proto", "openagents", "sync", "v1", "sync.proto")
      const source = readFileSync(file, "utf8")
      const edited = source.replace("  uint64 watermark = 2;", "  uint64 watermark = 9;")
      expect(edited).not.toBe(source)
      writeFileSync(file, edited)

      const unchanged = yield* run(buf, ["breaking", join(root, "proto"), "--against", join(root, "proto")])
      expect(unchanged.status).toBe(0)
      const result = yield* run(buf, ["breaking", join(dir, "proto"), "--against", join(root, "proto")])
      expect(result.status).not.toBe(0)
      expect(result.output).toContain("field \"2\" with name \"watermark\" on message \"TopicCursor\" was deleted")
    }))
})
