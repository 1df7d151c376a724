/**
 * Whole-number options of the command line, checked where they are parsed: a negative, fractional or oversized value
 * is a one-line usage error naming the option, never a fault deeper in (the services die on such values, as bugs).
 */
import { HelpDoc, Options, ValidationError } from "@effect/cli"
import { Effect } from "effect"

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

/** A whole number of at least `min`, at most 2^53 - 1 (a watermark or a version fits in a JSON number). */
const wholeNumber = (name: string, min: number) =>
  Options.text(name).pipe(
    Options.withPseudoName("integer"),
    Options.mapEffect((text) => {
      const trimmed = text.trim()
      if (/^-\d+$/.test(trimmed)) return invalid(`--${name} must not be negative, got ${trimmed}`)
      if (!/^\d+$/.test(trimmed)) return invalid(`--${name} must be a whole number, got "${text}"`)
      const value = Number(trimmed)
      if (!Number.isSafeInteger(value)) {
        return invalid(`--${name} ${trimmed} is too large: at most ${Number.MAX_SAFE_INTEGER}`)
      }
      if (value < min) return invalid(`--${name} must be at least ${min}, got ${value}`)
      return Effect.succeed(value)
    })
  )

/** A watermark or a version: 0 or more. */
export const nonNegative = (name: string) => wholeNumber(name, 0)

/** A count: 1 or more. */
export const positive = (name: string) => wholeNumber(name, 1)
