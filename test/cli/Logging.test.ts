/**
 * The command line's logger (src/cli/Logging.ts): the format and colours chosen from the environment, one JSON object
 * a line, and expected failures logged as their messages without a stack trace.
 */
import { describe, expect, it } from "@effect/vitest"
import { Cause, Console, Effect, Layer, LogLevel, Option } from "effect"
import * as Logging from "../../src/cli/Logging.js"
import { StorageError } from "../../src/services/StorageError.js"

/** Runs `effect` with the logger of `settings`, and returns what it wrote to stderr. */
const captured = (settings: Logging.LogSettings, effect: Effect.Effect<void>) =>
  Effect.gen(function*() {
    const lines: Array<string> = []
    const console: Console.Console = {
      ...(yield* Effect.console),
      error: (...args) => Effect.sync(() => void lines.push(args.join(" "))),
      unsafe: { ...globalThis.console, error: (...args: Array<unknown>) => void lines.push(args.join(" ")) }
    }
    // a run of its own: loggers installed by a layer stay installed in the fiber that provided it
    yield* Effect.promise(() =>
      Effect.runPromise(effect.pipe(Effect.provide(Layer.merge(Logging.layer(settings), Console.setConsole(console)))))
    )
    return lines
  })

const json: Logging.LogSettings = { format: "json", level: LogLevel.Info, colors: false }
const ansi = new RegExp(String.fromCharCode(27) + "\\[")

describe("logging", () => {
  it("pretty on a terminal, json elsewhere; colours only on a terminal without NO_COLOR", () => {
    const unset = { format: Option.none(), level: LogLevel.Info } as const
    expect(Logging.resolve(unset, { isTerminal: true, noColor: undefined })).toMatchObject({
      format: "pretty",
      colors: true
    })
    expect(Logging.resolve(unset, { isTerminal: true, noColor: "1" }).colors).toBe(false)
    // NO_COLOR= (empty) does not count (no-color.org)
    expect(Logging.resolve(unset, { isTerminal: true, noColor: "" }).colors).toBe(true)
    expect(Logging.resolve(unset, { isTerminal: false, noColor: undefined })).toMatchObject({
      format: "json",
      colors: false
    })
    expect(Logging.resolve({ ...unset, format: Option.some("pretty") }, { isTerminal: false, noColor: undefined }))
      .toMatchObject({ format: "pretty", colors: false })
  })

  it.effect("json: one object a line with time, level, message and the annotations as fields", () =>
    Effect.gen(function*() {
      const lines = yield* captured(
        json,
        Effect.logInfo("upgrade refused").pipe(Effect.annotateLogs({ reason: "token has expired" }))
      )
      expect(lines).toHaveLength(1)
      const entry = JSON.parse(lines[0]!)
      expect(entry).toMatchObject({ level: "info", message: "upgrade refused", reason: "token has expired" })
      expect(Date.parse(entry.time)).not.toBeNaN()
    }))

  it.effect("the level is a floor: debug is written only when asked for", () =>
    Effect.gen(function*() {
      const log = Effect.zipRight(Effect.logDebug("socket opened"), Effect.logWarning("slow consumer"))
      expect((yield* captured(json, log)).map((line) => JSON.parse(line).level)).toEqual(["warn"])
      expect((yield* captured({ ...json, level: LogLevel.Debug }, log)).map((line) => JSON.parse(line).level))
        .toEqual(["debug", "warn"])
    }))

  it.effect("an expected failure is its message, without a stack trace; a defect keeps its cause", () =>
    Effect.gen(function*() {
      const failure = new StorageError({ message: "cannot connect to DATABASE_URL: connection refused" })
      const [expected] = yield* captured(json, Effect.logWarning("retention failed", Cause.fail(failure)))
      const entry = JSON.parse(expected!)
      expect(entry.error).toBe("cannot connect to DATABASE_URL: connection refused")
      expect(entry.cause).toBeUndefined()
      expect(expected).not.toMatch(/\bat .*\.(ts|js):\d+/)

      // an error given as a part of the message is its message too
      const [part] = yield* captured(json, Effect.logWarning("sending head hints failed", failure))
      expect(JSON.parse(part!).message).toBe(
        "sending head hints failed cannot connect to DATABASE_URL: connection refused"
      )

      const [defect] = yield* captured(json, Effect.logError("tail stopped", Cause.die(new Error("boom"))))
      expect(JSON.parse(defect!).cause).toMatch(/boom[\s\S]*\bat /)
    }))

  it.effect("pretty writes colours only when told to", () =>
    Effect.gen(function*() {
      const log = Effect.logWarning("not ready: database unavailable")
      const plain = yield* captured({ format: "pretty", level: LogLevel.Info, colors: false }, log)
      const coloured = yield* captured({ format: "pretty", level: LogLevel.Info, colors: true }, log)
      expect(plain.join("\n")).toContain("not ready: database unavailable")
      expect(plain.join("\n")).not.toMatch(ansi)
      expect(coloured.join("\n")).toMatch(ansi)
    }))
})
