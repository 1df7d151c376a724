#!/usr/bin/env node
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import type { Cause } from "effect"
import { Console, Effect, Option } from "effect"
import { run } from "./cli/Cli.js"
import { render } from "./cli/Errors.js"
import * as Logging from "./cli/Logging.js"

/** Expected failures print as one line (see `Errors.render`); anything else is a defect, reported with its cause. */
const report = (cause: Cause.Cause<unknown>) => {
  const line = render(cause)
  if (line === undefined) return Effect.logError("khala failed", cause)
  return Option.match(line, { onNone: () => Effect.void, onSome: (text) => Console.error(text) })
}

// The logger is set up once, before anything else runs (see Logging); a bad logging setting stops the process first.
Logging.settings.pipe(
  Effect.tapError((error) => Console.error(`khala: bad configuration: ${error}`)),
  Effect.flatMap((settings) =>
    run(process.argv).pipe(Effect.tapErrorCause(report), Effect.provide(Logging.layer(settings)))
  ),
  Effect.provide(NodeContext.layer),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
