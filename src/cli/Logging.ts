/**
 * How the command line logs: one logger for the whole process, chosen once from the environment. Logs go to stderr
 * (stdout carries what commands print for scripts to read). `KHALA_LOG_FORMAT` picks `json` (one object a line, for
 * log shippers), `logfmt` or `pretty` (for a person at a terminal); without it, `pretty` when stderr is a terminal,
 * else `json`. `NO_COLOR` turns colours off; `KHALA_LOG_LEVEL` sets the least level written.
 */
import type { ConfigError } from "effect"
import { Cause, Chunk, Config, Effect, HashMap, Inspectable, Layer, Logger, LogLevel, Option } from "effect"

/** The logging settings. */
export interface LogSettings {
  readonly format: "json" | "logfmt" | "pretty"
  readonly level: LogLevel.LogLevel
  readonly colors: boolean
}

/**
 * The settings of a format and level as configured (each optional), for a process whose stderr is or is not a
 * terminal and whose `NO_COLOR` is as given.
 */
export const resolve = (
  configured: { readonly format: Option.Option<LogSettings["format"]>; readonly level: LogLevel.LogLevel },
  environment: { readonly isTerminal: boolean; readonly noColor: string | undefined }
): LogSettings => ({
  format: Option.getOrElse(configured.format, () => environment.isTerminal ? "pretty" : "json"),
  level: configured.level,
  // https://no-color.org: present and not empty
  colors: environment.isTerminal && (environment.noColor ?? "") === ""
})

/** The settings from the environment. */
export const settings: Effect.Effect<LogSettings, ConfigError.ConfigError> = Config.all({
  format: Config.option(Config.literal("json", "logfmt", "pretty")("KHALA_LOG_FORMAT")),
  level: Config.logLevel("KHALA_LOG_LEVEL").pipe(Config.withDefault(LogLevel.Info)),
  noColor: Config.option(Config.string("NO_COLOR"))
}).pipe(
  Effect.map(({ format, level, noColor }) =>
    resolve({ format, level }, { isTerminal: process.stderr.isTTY === true, noColor: Option.getOrUndefined(noColor) })
  )
)

const errorText = (error: unknown): string =>
  error instanceof Error || (typeof error === "object" && error !== null && "message" in error)
    ? String((error as { readonly message: unknown }).message)
    : Inspectable.toStringUnknown(error)

/**
 * An expected failure (a tagged error a caller handled: the database is away, a token was refused) is logged as its
 * message, in an `error` annotation, without a stack trace: the trace says nothing an operator can act on. Errors
 * given as parts of a message become their messages for the same reason. Defects keep their whole cause.
 */
const withoutExpectedTraces = <O>(logger: Logger.Logger<unknown, O>): Logger.Logger<unknown, O> =>
  Logger.mapInputOptions(logger, (options) => {
    const message = Array.isArray(options.message)
      ? options.message.map((part) => (part instanceof Error ? errorText(part) : part))
      : options.message instanceof Error
      ? errorText(options.message)
      : options.message
    const expected = !Cause.isEmpty(options.cause) && Chunk.isEmpty(Cause.defects(options.cause)) &&
      !Cause.isInterruptedOnly(options.cause)
    if (!expected) return { ...options, message }
    const failures = Array.from(Cause.failures(options.cause), errorText).join("; ")
    return {
      ...options,
      message,
      cause: Cause.empty,
      annotations: HashMap.set(options.annotations, "error", failures)
    }
  })

/**
 * One JSON object a line: `time`, `level`, `message`, then the annotations (`socket`, `org`, `reason`, ...) as
 * fields, `spans` in milliseconds, and `cause` for a defect.
 */
const jsonLine: Logger.Logger<unknown, string> = Logger.map(Logger.structuredLogger, (entry) => {
  const { annotations, cause, logLevel, message, spans, timestamp } = entry
  return Inspectable.stringifyCircular({
    time: timestamp,
    level: logLevel.toLowerCase(),
    // one string, as log shippers expect: the parts of a message joined
    message: Array.isArray(message)
      ? message.map((part) => (typeof part === "string" ? part : Inspectable.stringifyCircular(part))).join(" ")
      : message,
    ...annotations,
    ...(Object.keys(spans).length > 0 ? { spans } : {}),
    ...(cause === undefined ? {} : { cause })
  })
})

/** The logger of the settings, writing to stderr. */
export const logger = (settings: LogSettings): Logger.Logger<unknown, void> => {
  switch (settings.format) {
    case "json":
      return withoutExpectedTraces(Logger.withConsoleError(jsonLine))
    case "logfmt":
      return withoutExpectedTraces(Logger.withConsoleError(Logger.logfmtLogger))
    case "pretty":
      return withoutExpectedTraces(Logger.prettyLogger({ stderr: true, colors: settings.colors }))
  }
}

/** Replaces the default logger with that of the settings, at their least level. */
export const layer = (settings: LogSettings): Layer.Layer<never> =>
  Layer.merge(
    Logger.replace(Logger.defaultLogger, logger(settings)),
    Logger.minimumLogLevel(settings.level)
  )
