/** One definition each, in the protocol: storage and the wire agree on what a watermark and an unknown topic are. */
export { UnknownTopic } from "../protocol/TopicCatalog.js"
export { Watermark } from "../protocol/Watermark.js"

/** The head and the retention floor of one topic, read in one snapshot. */
export interface TopicPosition {
  readonly topic: string
  /** The highest committed watermark. */
  readonly head: number
  /** The highest pruned watermark: a resume point below it is stale (I8). */
  readonly retentionFloor: number
  /** Changes only when the topic's journal is reset: a resume point of another epoch is stale (protocol.md §7). */
  readonly epoch: string
}

/** What registering a topic records in the sequencer. */
export interface TopicRegistration {
  readonly topic: string
  readonly retentionClass: string
  readonly pointerMode?: boolean | undefined
}
