import type { SqlError } from "@effect/sql/SqlError"
import { Effect } from "effect"
import { InvalidUpdate } from "../../services/Publisher.js"
import { StorageError } from "../../services/StorageError.js"
import { UnknownTopic } from "../../services/Topic.js"

/** SQLSTATEs raised by Khala's SQL functions (see the migrations). */
export const SqlState = {
  unknownTopic: "KH001",
  invalidUpdate: "KH002"
} as const

const sqlState = (error: SqlError): string | undefined => {
  const cause = error.cause as { readonly code?: unknown } | undefined
  return typeof cause?.code === "string" ? cause.code : undefined
}

/** The driver's own message (a SQL error's text, a connection refusal), which is what an operator needs. */
export const causeMessage = (error: SqlError) => {
  const cause = error.cause as { readonly message?: unknown } | undefined
  return typeof cause?.message === "string" ? cause.message : error.message
}

const reasons: Record<string, StorageError["reason"]> = {
  // deadlock_detected, serialization_failure
  "40P01": "conflict",
  "40001": "conflict",
  // lock_not_available: a lock_timeout expired
  "55P03": "busy"
}

export const toStorageError = (error: SqlError) => {
  const reason = reasons[sqlState(error) ?? ""]
  return new StorageError({
    message: `database: ${causeMessage(error)}`,
    ...(reason === undefined ? {} : { reason }),
    cause: error
  })
}

/** Maps a failed statement to the typed error a caller can act on; anything unexpected is a `StorageError`. */
export const classify = (topic: string) => (error: SqlError): UnknownTopic | InvalidUpdate | StorageError => {
  switch (sqlState(error)) {
    case SqlState.unknownTopic:
      return new UnknownTopic({ topic: topicFromMessage(causeMessage(error)) ?? topic })
    case SqlState.invalidUpdate:
      return new InvalidUpdate({ message: causeMessage(error) })
    default:
      return toStorageError(error)
  }
}

const topicFromMessage = (message: string) => /unknown topic '((?:[^']|'')*)'/.exec(message)?.[1]?.replaceAll("''", "'")

export const mapStorageError = Effect.mapError(toStorageError)
