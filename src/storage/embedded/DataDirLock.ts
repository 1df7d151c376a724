import { Effect } from "effect"
import { linkSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs"
import { hostname } from "node:os"
import { resolve } from "node:path"

/**
 * Who holds a lock: a process is its pid together with the time it started and the boot it started in, because a
 * pid alone is reused (every container's first process is pid 1, restart after restart).
 */
export interface Owner {
  readonly pid: number
  /** The process's start time in clock ticks since boot (`/proc/<pid>/stat`), when the system tells it. */
  readonly start: string | null
  /** The kernel's boot id, when the system tells it. */
  readonly boot: string | null
  readonly host: string
}

const readOrNull = (file: string) => {
  try {
    return readFileSync(file, "utf8")
  } catch {
    return null
  }
}

/** The start time of a process, field 22 of `/proc/<pid>/stat` (the command name may hold spaces and parentheses). */
const startOf = (pid: number): string | null => {
  const stat = readOrNull(`/proc/${pid}/stat`)
  if (stat === null) return null
  return stat.slice(stat.lastIndexOf(")") + 2).split(" ")[19] ?? null
}

const bootId = () => readOrNull("/proc/sys/kernel/random/boot_id")?.trim() ?? null

export const self = (): Owner => ({ pid: process.pid, start: startOf(process.pid), boot: bootId(), host: hostname() })

const signalable = (pid: number) => {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM"
  }
}

/**
 * Whether the process that wrote `owner` still runs: on Linux, the same pid that started at the same time, in this
 * boot; elsewhere, a process with that pid other than this one. A process of another pid namespace (another
 * container on the same volume) is not visible, so two containers must not share a data directory at once.
 */
export const isAlive = (owner: Owner): boolean => {
  const boot = bootId()
  if (boot !== null && owner.start !== null) return owner.boot === boot && startOf(owner.pid) === owner.start
  return owner.pid !== process.pid && signalable(owner.pid)
}

/** Directories this process holds: a second open of one in the same process is refused on every system. */
const held = new Set<string>()

const prefix = "khala.lock."

const generations = (dir: string): Array<number> =>
  readdirSync(dir)
    .filter((name) => name.startsWith(prefix))
    .map((name) => Number(name.slice(prefix.length)))
    .filter((n) => Number.isSafeInteger(n) && n > 0)
    .sort((a, b) => a - b)

const fileOf = (dir: string, generation: number) => resolve(dir, `${prefix}${generation}`)

const readOwner = (dir: string, generation: number): Owner | null => {
  const text = readOrNull(fileOf(dir, generation))
  if (text === null) return null
  try {
    return JSON.parse(text) as Owner
  } catch {
    return null
  }
}

/** The lock is held by a running process. */
export class InUse extends Error {
  constructor(readonly owner: Owner) {
    super(`it is in use by process ${owner.pid}${owner.host === hostname() ? "" : ` of ${owner.host}`}`)
  }
}

/**
 * Takes the lock of `dir` for this process, or throws `InUse`.
 *
 * The lock is a numbered file, written whole and then linked into place, so it never exists half written; the link
 * fails when the number is taken, so of several processes taking over a dead owner's lock at once exactly one
 * creates the next number. A process only ever takes the number after the highest it saw, and gives its number up if
 * a higher one exists once it holds it, so a slow process that saw an older number cannot win either. Old numbers
 * are removed by the winner.
 */
export const acquire = (dir: string): number => {
  const me = self()
  if (held.has(dir)) throw new InUse(me)
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const content = JSON.stringify(me)
  for (let attempt = 0; attempt < 100; attempt++) {
    const seen = generations(dir)
    const highest = seen[seen.length - 1] ?? 0
    if (highest > 0) {
      const owner = readOwner(dir, highest)
      // unreadable: removed since the listing, or not this program's; it holds nothing either way
      if (owner !== null && isAlive(owner)) throw new InUse(owner)
    }
    const mine = highest + 1
    const temp = resolve(dir, `.khala.lock.${process.pid}.${Date.now()}.tmp`)
    writeFileSync(temp, content, { mode: 0o600 })
    try {
      linkSync(temp, fileOf(dir, mine))
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "EEXIST") continue
      throw error
    } finally {
      rmSync(temp, { force: true })
    }
    const after = generations(dir)
    if (after[after.length - 1] !== mine) {
      rmSync(fileOf(dir, mine), { force: true })
      continue
    }
    for (const older of after) if (older < mine) rmSync(fileOf(dir, older), { force: true })
    held.add(dir)
    return mine
  }
  throw new Error("the data directory's lock keeps changing hands")
}

/** Gives the lock up, if it is still ours. */
export const release = (dir: string, generation: number) => {
  held.delete(dir)
  const owner = readOwner(dir, generation)
  if (owner !== null && owner.pid === process.pid && owner.start === self().start) {
    rmSync(fileOf(dir, generation), { force: true })
  }
}

/** The data directory's lock for the scope. */
export const scoped = (dir: string) =>
  Effect.acquireRelease(
    Effect.try({ try: () => acquire(dir), catch: (error) => error }),
    (generation) => Effect.sync(() => release(dir, generation))
  )
