/**
 * Watermarks (protocol.md §5): per-topic positions in the journal, dense and monotonic, 1-based; 0 means "before the
 * first row". JSON numbers, exact up to 2^53. Browser-safe.
 *
 * @since 0.1.0
 */
import * as Schema from "effect/Schema"

/**
 * A journal watermark: a non-negative safe integer (JSON numbers are exact up to 2^53, protocol.md §5).
 *
 * @since 0.1.0
 */
export const Watermark = Schema.NonNegativeInt.pipe(
  Schema.filter((n) => Number.isSafeInteger(n), { message: () => "a watermark must be a safe integer" })
)

/**
 * A topic's watermark, `{topic, watermark}` on the wire, with the topic's `epoch` where the server reports it (the
 * subscribe reply): a client keeps it beside the watermark and resumes with both.
 *
 * @since 0.1.0
 */
export const TopicWatermark = Schema.Struct({
  topic: Schema.String,
  watermark: Watermark,
  epoch: Schema.optionalWith(Schema.String, { exact: true })
})

/**
 * @since 0.1.0
 */
export interface TopicWatermark extends Schema.Schema.Type<typeof TopicWatermark> {}

/**
 * A copy of a watermark list holding only `topic`, `watermark` and `epoch`: stray properties of the caller's objects
 * stay out of the JSON.
 *
 * @since 0.1.0
 */
export const topicWatermarks = (list: ReadonlyArray<TopicWatermark>): Array<TopicWatermark> =>
  list.map(({ epoch, topic, watermark }) => epoch === undefined ? { topic, watermark } : { topic, watermark, epoch })
