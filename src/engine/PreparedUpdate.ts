import { Effect, Either, ParseResult, Schema } from "effect"
import { canonicalize } from "../protocol/CanonicalJson.js"
import { payloadHashOfCanonical } from "../protocol/PayloadHashNode.js"
import type { PreparedUpdate } from "../services/Appender.js"
import type { RemoveUpdate } from "../services/Publisher.js"
import { InvalidUpdate, PublishUpdate, RemoveUpdate as RemoveUpdateSchema } from "../services/Publisher.js"

const decodeUpdate = Schema.decodeUnknownEither(PublishUpdate, { onExcessProperty: "error" })
const decodeRemove = Schema.decodeUnknownEither(RemoveUpdateSchema, { onExcessProperty: "error" })

/** Each problem on one line, naming its field: a message for a log line or a command line, not a schema dump. */
const describe = (error: ParseResult.ParseError) =>
  ParseResult.ArrayFormatter.formatErrorSync(error).map((issue) => {
    const path = issue.path.map(String).join(".")
    return path === "" || issue.message.startsWith(path) ? issue.message : `${path}: ${issue.message}`
  }).join("; ")

const invalid = (error: ParseResult.ParseError, index?: number) =>
  new InvalidUpdate({ message: describe(error), ...indexed(index) })

/**
 * Validates an update and hashes its payload, so that a bad update fails alone and before any database work.
 * Synchronous: it runs once per publish on the hot path, where an effect per step costs more than the work.
 */
export const prepareUpdate = (update: PublishUpdate, index?: number): Either.Either<PreparedUpdate, InvalidUpdate> => {
  const valid = decodeUpdate(update)
  if (Either.isLeft(valid)) return Either.left(invalid(valid.left, index))
  const canonical = canonicalize(valid.right.payload)
  if (Either.isLeft(canonical)) {
    return Either.left(
      new InvalidUpdate({ message: `payload is not a JSON value: ${canonical.left.message}`, ...indexed(index) })
    )
  }
  if (unstorableEscape.test(canonical.right)) {
    return Either.left(
      new InvalidUpdate({
        message: "payload has a NUL character or an unpaired surrogate in a string, which Postgres jsonb cannot store",
        ...indexed(index)
      })
    )
  }
  return Either.right({
    ...valid.right,
    deleted: false,
    canonicalPayload: canonical.right,
    payloadHash: payloadHashOfCanonical(canonical.right),
    payloadBytes: Buffer.byteLength(canonical.right, "utf8")
  })
}

/** Validates a delete: the same checks of its key, org and version, and no payload. */
export const prepareRemove = (update: RemoveUpdate): Either.Either<PreparedUpdate, InvalidUpdate> =>
  Either.map(Either.mapLeft(decodeRemove(update), (error) => invalid(error)), (valid) => ({
    ...valid,
    payload: null,
    deleted: true,
    canonicalPayload: "null",
    payloadHash: null,
    payloadBytes: 0
  }))

export const prepareAll = (updates: ReadonlyArray<PublishUpdate>) =>
  Effect.forEach(updates, (update, index) => prepareUpdate(update, index))

// An escape (not preceded by an escaped backslash) that jsonb refuses: every layer refuses it the same way.
const unstorableEscape = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i

const indexed = (index: number | undefined) => index === undefined ? {} : { index }
