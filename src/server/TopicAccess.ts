/**
 * Which topics a principal may read (protocol.md §4, §8): a topic is readable when the catalog knows it and the token's
 * `oa_sync_scopes` name it, in either form. The socket and the HTTP routes authorize through this module alone.
 */
import { Option } from "effect"
import type { ResumePoint, TopicFilter } from "../protocol/Requests.js"
import type { Catalog, TopicInfo } from "../protocol/TopicCatalog.js"

/** The catalog topics the scopes grant, by dotted name, in scope order. */
export const allowedTopics = (catalog: Catalog, scopes: Iterable<string>): ReadonlyArray<string> => {
  const allowed = new Set<string>()
  for (const scope of scopes) {
    const topic = catalog.get(scope)
    if (Option.isSome(topic)) allowed.add(topic.value.wireName)
  }
  return Array.from(allowed)
}

/**
 * A requested topic the client may read.
 */
export interface ResolvedTopic {
  readonly topic: TopicInfo
  /** The name as the client gave it; replies and pushes use it (protocol.md §4). */
  readonly requestedAs: string
  /** Watermark to replay after; none when the client gave no cursor (replay from 0, protocol.md §5). */
  readonly resumeAfter: Option.Option<number>
  /** The epoch the client's cursor belongs to, when it sent one: another epoch than the topic's is stale. */
  readonly resumeEpoch: Option.Option<string>
  /** The documents the client follows; every document of its org when none. */
  readonly filter: Option.Option<TopicFilter>
}

/**
 * The outcome of resolving a request's topics.
 */
export interface ResolvedTopics {
  /** In request order, one entry per catalog topic even when the client named it in both forms. */
  readonly topics: ReadonlyArray<ResolvedTopic>
  /** Names that are unknown or outside the token's scopes, as given: `forbidden_topics` of the error. */
  readonly forbidden: ReadonlyArray<string>
}

/**
 * Resolves the topics of a subscribe (or unsubscribe) request against the catalog and the token's scopes.
 *
 * A scope is a topic name in either form and grants exactly the topic it resolves to; there are no wildcards.
 * A topic named in both forms is kept once, under the first name used. Cursors are matched through the
 * catalog too, and if both names of one topic carry a cursor the lower one wins: replaying a few rows twice
 * is harmless, skipping rows is not (I1).
 */
export const resolveSubscribe = (
  request: {
    readonly topics: ReadonlyArray<string>
    readonly resumeAfter?: ReadonlyArray<ResumePoint>
    readonly filters?: { readonly [topic: string]: TopicFilter }
  },
  catalog: Catalog,
  allowedScopes: Iterable<string>
): ResolvedTopics => {
  const allowed = new Set(allowedTopics(catalog, allowedScopes))
  const cursors = new Map<string, ResumePoint>()
  for (const point of request.resumeAfter ?? []) {
    const topic = catalog.get(point.topic)
    if (Option.isNone(topic)) continue
    const previous = cursors.get(topic.value.wireName)
    if (previous === undefined || point.watermark < previous.watermark) cursors.set(topic.value.wireName, point)
  }
  const filters = new Map<string, TopicFilter>()
  for (const [name, filter] of Object.entries(request.filters ?? {})) {
    const topic = catalog.get(name)
    if (Option.isSome(topic) && !filters.has(topic.value.wireName)) filters.set(topic.value.wireName, filter)
  }

  const topics: Array<ResolvedTopic> = []
  const forbidden: Array<string> = []
  const taken = new Set<string>()
  for (const name of request.topics) {
    const topic = catalog.get(name)
    if (Option.isNone(topic) || !allowed.has(topic.value.wireName)) {
      if (!forbidden.includes(name)) forbidden.push(name)
      continue
    }
    if (taken.has(topic.value.wireName)) continue
    taken.add(topic.value.wireName)
    const cursor = cursors.get(topic.value.wireName)
    topics.push({
      topic: topic.value,
      requestedAs: name,
      resumeAfter: Option.fromNullable(cursor?.watermark),
      resumeEpoch: Option.fromNullable(cursor?.epoch),
      filter: Option.fromNullable(filters.get(topic.value.wireName))
    })
  }
  return { topics, forbidden }
}
