import { Schema } from "effect"

/** A per-topic position in the journal: dense, monotonic, 1-based; 0 means "before the first row" (I2). */
export const Watermark = Schema.NonNegativeInt.pipe(
  Schema.filter((n) => Number.isSafeInteger(n), { message: () => "a watermark must be a safe integer" })
)

/** The topic named is not in the catalog (it has no sequence row). */
export class UnknownTopic extends Schema.TaggedError<UnknownTopic>()("UnknownTopic", {
  topic: Schema.String
}) {
  override get message() {
    return `unknown topic ${JSON.stringify(this.topic)}`
  }
}

/** The head and the retention floor of one topic, read in one snapshot. */
export interface TopicPosition {
  readonly topic: string
  /** The highest committed watermark. */
  readonly head: number
  /** The highest pruned watermark: a resume point below it is stale (I8). */
  readonly retentionFloor: number
}

/** What registering a topic records in the sequencer. */
export interface TopicRegistration {
  readonly topic: string
  readonly retentionClass: string
  readonly pointerMode?: boolean | undefined
}
