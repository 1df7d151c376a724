import { Effect, ParseResult, Schema } from "effect"
import { canonicalize } from "../protocol/CanonicalJson.js"
import { payloadHashOfCanonical } from "../protocol/PayloadHashNode.js"
import { InvalidUpdate, PublishUpdate } from "../services/Publisher.js"

/** A validated update with its canonical JSON and payload hash, computed once in process. */
export interface PreparedUpdate extends PublishUpdate {
  readonly canonicalPayload: string
  /** `sha256:<hex>` */
  readonly payloadHash: string
}

const decodeUpdate = Schema.decodeUnknown(PublishUpdate, { onExcessProperty: "error" })

/** Validates an update and hashes its payload, so that a bad update fails alone and before any database work. */
export const prepareUpdate = (update: PublishUpdate, index?: number): Effect.Effect<PreparedUpdate, InvalidUpdate> =>
  decodeUpdate(update).pipe(
    Effect.mapError((error) =>
      new InvalidUpdate({ message: ParseResult.TreeFormatter.formatErrorSync(error), ...indexed(index) })
    ),
    Effect.flatMap((valid) =>
      canonicalize(valid.payload).pipe(
        Effect.mapError((error) =>
          new InvalidUpdate({ message: `payload is not a JSON value: ${error.message}`, ...indexed(index) })
        ),
        Effect.filterOrFail(
          (canonicalPayload) => !unstorableEscape.test(canonicalPayload),
          () =>
            new InvalidUpdate({
              message: "payload has a NUL character or an unpaired surrogate in a string, which Postgres jsonb cannot " +
                "store",
              ...indexed(index)
            })
        ),
        Effect.map((canonicalPayload): PreparedUpdate => ({
          ...valid,
          canonicalPayload,
          payloadHash: payloadHashOfCanonical(canonicalPayload)
        }))
      )
    )
  )

export const prepareAll = (updates: ReadonlyArray<PublishUpdate>) =>
  Effect.forEach(updates, (update, index) => prepareUpdate(update, index))

// An escape (not preceded by an escaped backslash) that jsonb refuses: every layer refuses it the same way.
const unstorableEscape = /(?:^|[^\\])(?:\\\\)*\\u(?:0000|d[89a-f][0-9a-f]{2})/i

const indexed = (index: number | undefined) => index === undefined ? {} : { index }
