#!/usr/bin/env node
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import type { Cause } from "effect"
import { Console, Effect, Logger, Option } from "effect"
import { run } from "./cli/Cli.js"
import { render } from "./cli/Errors.js"

/** Expected failures print as one line (see `Errors.render`); anything else is a defect, reported with its cause. */
const report = (cause: Cause.Cause<unknown>) => {
  const line = render(cause)
  if (line === undefined) return Effect.logError("khala failed", cause)
  return Option.match(line, { onNone: () => Effect.void, onSome: (text) => Console.error(text) })
}

// Logs go to stderr: stdout carries what commands print (a watermark, journal rows) for scripts to read.
const logger = Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true }))

run(process.argv).pipe(
  Effect.tapErrorCause(report),
  Effect.provide([NodeContext.layer, logger]),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
