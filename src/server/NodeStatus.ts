/**
 * `GET /statusz`: what this node holds now, as JSON (docs/operations.md): whether it drains, its sockets and their
 * limit, and its topic subscriptions by topic; `khala status --url` prints it. It is read from the node's own state
 * (the drain's sockets, the sessions' subscriptions), never from the database, so it answers at once whatever the
 * database does. Like `/metrics` it names topics and counts, never a document, an org or a user.
 */
import { HttpRouter, HttpServerResponse } from "@effect/platform"
import { Effect, Schema } from "effect"
import { Drain } from "./Drain.js"
import { ServerConfig } from "./ServerConfig.js"
import { Subscribers } from "./Subscribers.js"

/** The path of the node's status. */
export const statusPath = "/statusz"

const Count = Schema.NonNegativeInt

/** One topic the node's sockets subscribe to. */
export const TopicSubscribers = Schema.Struct({
  topic: Schema.String,
  subscribers: Count
})

/** The answer of `GET /statusz`; its JSON keys are snake_case, as on the wire. */
export const NodeStatus = Schema.Struct({
  draining: Schema.Boolean,
  sockets: Count,
  maxSockets: Schema.propertySignature(Count).pipe(Schema.fromKey("max_sockets")),
  /** Every topic subscription of every socket. */
  subscriptions: Count,
  /** By topic name, each with at least one subscriber. */
  topics: Schema.Array(TopicSubscribers),
  /** How long the process has run: a node that restarted shows here. */
  uptimeSeconds: Schema.propertySignature(Schema.NonNegative).pipe(Schema.fromKey("uptime_seconds"))
})
export type NodeStatus = typeof NodeStatus.Type

/** The node's status now. */
export const current: Effect.Effect<NodeStatus, never, Drain | ServerConfig | Subscribers> = Effect.gen(function*() {
  const drain = yield* Drain
  const settings = yield* ServerConfig
  const byTopic = yield* (yield* Subscribers).byTopic
  const topics = Array.from(byTopic, ([topic, subscribers]) => ({ topic, subscribers }))
  topics.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : 0))
  return {
    draining: yield* drain.draining,
    sockets: yield* drain.sockets,
    maxSockets: settings.maxSockets,
    subscriptions: topics.reduce((total, t) => total + t.subscribers, 0),
    topics,
    uptimeSeconds: Math.floor(process.uptime())
  }
})

const encode = HttpServerResponse.schemaJson(NodeStatus)

/** `GET /statusz` */
export const routes = HttpRouter.empty.pipe(
  HttpRouter.get(
    statusPath,
    Effect.flatMap(current, (status) =>
      // the status is made here: one that does not encode is a fault of this module
      Effect.orDie(encode(status, { headers: { "cache-control": "no-store" } })))
  )
)
