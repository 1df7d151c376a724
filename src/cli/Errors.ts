/**
 * The one renderer of the command line's expected failures: each becomes one line on stderr and a failing exit, so
 * an operator reads what to fix rather than a stack trace. Anything it does not know is a defect, reported whole.
 */
import { ValidationError } from "@effect/cli"
import { HttpServerError } from "@effect/platform"
import { Cause, ConfigError, Option, Schema } from "effect"
import { AuthConfigError } from "../auth/AuthJose.js"
import { AuditMismatches } from "../engine/Audit.js"
import { ServerConfigError } from "../server/ServerConfig.js"
import { LegacyReadError } from "../services/Audit.js"
import { StaleCursor } from "../services/Journal.js"
import { InvalidUpdate } from "../services/Publisher.js"
import { StorageError } from "../services/StorageError.js"
import { UnknownTopic } from "../services/Topic.js"

const isOperatorError = Schema.is(
  Schema.Union(
    StorageError,
    InvalidUpdate,
    UnknownTopic,
    StaleCursor,
    AuthConfigError,
    AuditMismatches,
    LegacyReadError,
    ServerConfigError
  )
)

interface SystemErrorLike {
  readonly code?: unknown
  readonly address?: unknown
  readonly port?: unknown
  readonly hostname?: unknown
  readonly message?: unknown
}

/** Why the server could not listen, from Node's error code. */
const listenFailure = (cause: unknown): string => {
  const error = (typeof cause === "object" && cause !== null ? cause : {}) as SystemErrorLike
  const where = error.address !== undefined ? `${String(error.address)}:${String(error.port)}` : undefined
  switch (error.code) {
    case "EADDRINUSE":
      return `cannot listen on ${where ?? "the address"}: it is already in use (choose another KHALA_PORT)`
    case "EADDRNOTAVAIL":
      return `cannot listen on ${where ?? "the address"}: not an address of this machine (check KHALA_HOST)`
    case "EACCES":
      return `cannot listen on ${where ?? "the address"}: permission denied (a port below 1024 needs privileges)`
    case "ENOTFOUND":
    case "EAI_AGAIN":
    case "EAI_NONAME":
      return `cannot listen on KHALA_HOST "${String(error.hostname ?? "")}": no such host`
    default:
      return `cannot listen: ${typeof error.message === "string" ? error.message : String(cause)}`
  }
}

/**
 * The line to print for a failure: none when there is nothing to print (an interruption, or a usage error the
 * command line printed already), a `Some` line for an expected failure, and `undefined` for a defect.
 */
export const render = (cause: Cause.Cause<unknown>): Option.Option<string> | undefined => {
  if (Cause.isInterruptedOnly(cause)) return Option.none()
  const failure = Cause.failureOption(cause)
  if (Option.isNone(failure)) return undefined
  const error = failure.value
  if (ValidationError.isValidationError(error)) return Option.none()
  if (ConfigError.isConfigError(error)) return Option.some(`khala: bad configuration: ${error}`)
  if (isOperatorError(error)) return Option.some(`khala: ${error.message}`)
  if (error instanceof HttpServerError.ServeError) {
    return Option.some(`khala: ${listenFailure(error.cause)}`)
  }
  return undefined
}
