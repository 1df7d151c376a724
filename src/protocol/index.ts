/**
 * The Khala wire protocol: generated proto messages and enums, the topic catalog, error codes,
 * canonical JSON and payload hashes. Browser-safe; the Node-only hash backend is
 * `PayloadHashNode`, imported from its own module.
 *
 * @since 0.1.0
 */

/**
 * @since 0.1.0
 */
export * as CanonicalJson from "./CanonicalJson.js"

/**
 * @since 0.1.0
 */
export * as ErrorCode from "./ErrorCode.js"

/**
 * @since 0.1.0
 */
export * as PayloadHash from "./PayloadHash.js"

/**
 * @since 0.1.0
 */
export * as TopicCatalog from "./TopicCatalog.js"

export * from "./gen/openagents/sync/v1/errors_pb.js"
export * from "./gen/openagents/sync/v1/sync_pb.js"
export * from "./gen/openagents/sync/v1/topics_pb.js"

/**
 * @since 0.1.0
 */
export * as PhoenixFrame from "./PhoenixFrame.js"

/**
 * @since 0.1.0
 */
export * as SyncChannel from "./SyncChannel.js"

/**
 * @since 0.1.0
 */
export * as Requests from "./Requests.js"

/**
 * @since 0.1.0
 */
export * as Replies from "./Replies.js"

/**
 * @since 0.1.0
 */
export * as UpdateBatch from "./UpdateBatch.js"

/**
 * @since 0.1.0
 */
export * as Watermark from "./Watermark.js"
