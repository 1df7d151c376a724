import { Effect } from "effect"
import type { ChildProcess } from "node:child_process"
import { fork } from "node:child_process"
import { readFileSync } from "node:fs"

// Scope finalizers stop children when a scenario ends or fails; this catches the exits that skip them (an uncaught
// error, process.exit), so no server or client process outlives the bench.
const running = new Set<ChildProcess>()
process.on("exit", () => {
  for (const child of running) child.kill("SIGKILL")
})

const exited = (child: ChildProcess) => child.exitCode !== null || child.signalCode !== null

/** Stops a child: SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
const stop = (child: ChildProcess, graceMs = 3000) =>
  Effect.promise(() =>
    new Promise<void>((resolve) => {
      if (exited(child)) return resolve()
      const kill = setTimeout(() => child.kill("SIGKILL"), graceMs)
      child.once("exit", () => {
        clearTimeout(kill)
        resolve()
      })
      child.kill("SIGTERM")
    })
  )

/** A child process that lives as long as the current scope, and no longer than the bench process. */
export const ownedProcess = <C extends ChildProcess>(start: () => C) =>
  Effect.acquireRelease(
    Effect.sync(() => {
      const child = start()
      running.add(child)
      child.once("exit", () => running.delete(child))
      return child
    }),
    (child) => stop(child)
  )

/**
 * Forks a bench script (a file of this folder) under tsx, with an IPC channel that carries typed arrays
 * (`advanced` serialization), for as long as the current scope.
 */
export const forkBenchScript = (script: string) =>
  ownedProcess(() =>
    fork(new URL(script, import.meta.url).pathname, [], {
      execArgv: ["--import", "tsx"],
      serialization: "advanced",
      stdio: ["ignore", "inherit", "inherit", "ipc"]
    })
  )

/** Resident set size of a process, in KiB, from /proc (Linux). */
export const rssKiB = (pid: number): number => {
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"))
  if (match === null) throw new Error(`no VmRSS for process ${pid}`)
  return Number(match[1])
}
