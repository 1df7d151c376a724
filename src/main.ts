#!/usr/bin/env node
import { ValidationError } from "@effect/cli"
import { NodeContext, NodeRuntime } from "@effect/platform-node"
import { Cause, ConfigError, Console, Effect, Logger, Option, Schema } from "effect"
import { AuthConfigError } from "./auth/AuthJose.js"
import { run } from "./cli/Cli.js"
import { AuditMismatches } from "./engine/Audit.js"
import { LegacyReadError } from "./services/Audit.js"
import { StaleCursor } from "./services/Journal.js"
import { InvalidUpdate } from "./services/Publisher.js"
import { StorageError } from "./services/StorageError.js"
import { UnknownTopic } from "./services/Topic.js"

const isOperatorError = Schema.is(Schema.Union(
  StorageError,
  InvalidUpdate,
  UnknownTopic,
  StaleCursor,
  AuthConfigError,
  AuditMismatches,
  LegacyReadError
))

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

// Logs go to stderr: stdout carries what commands print (a watermark, journal rows) for scripts to read.
const logger = Logger.replace(Logger.defaultLogger, Logger.prettyLogger({ stderr: true }))

run(process.argv).pipe(
  Effect.tapErrorCause(report),
  Effect.provide([NodeContext.layer, logger]),
  NodeRuntime.runMain({ disableErrorReporting: true, disablePrettyLogger: true })
)
