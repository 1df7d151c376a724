#!/usr/bin/env node
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, ConfigError, Console, Effect, Option, Schema } from "effect"
import { AuthConfigError } from "./auth/AuthJose.js"
import { run } from "./cli/Cli.js"
import * as Logging from "./cli/Logging.js"
import { StaleCursor } from "./services/Journal.js"
import { InvalidUpdate } from "./services/Publisher.js"
import { StorageError } from "./services/StorageError.js"
import { UnknownTopic } from "./services/Topic.js"

const isOperatorError = Schema.is(Schema.Union(StorageError, InvalidUpdate, UnknownTopic, StaleCursor, AuthConfigError))

/**
 * Failures an operator can act on print as one line; the CLI has printed its own usage errors already; anything
 * else is a defect, reported with its whole cause.
 */
const report = (cause: Cause.Cause<unknown>) => {
  if (Cause.isInterruptedOnly(cause)) return Effect.void
  return Option.match(Cause.failureOption(cause), {
    onNone: () => Effect.logError("khala failed", cause),
    onSome: (error) => {
      if (ValidationError.isValidationError(error)) return Effect.void
      if (ConfigError.isConfigError(error)) return Console.error(`khala: bad configuration: ${error}`)
      if (isOperatorError(error)) return Console.error(`khala: ${error.message}`)
      return Effect.logError("khala failed", cause)
    }
  })
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
