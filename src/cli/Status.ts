import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import type { HttpClientError } from "@effect/platform"
import { HttpClient, HttpClientResponse } from "@effect/platform"
import { NodeHttpClient } from "@effect/platform-node"
import type { Cause } from "effect"
import { Console, Effect, Either, Option, ParseResult } from "effect"
import * as NodeStatus from "../server/NodeStatus.js"
import { Journal } from "../services/Journal.js"
import { OutboxStore } from "../services/OutboxStore.js"
import { Sequencer } from "../services/Sequencer.js"
import * as Outbox from "./Outbox.js"
import { layerKhala } from "./Runtime.js"

/** The oldest row still in a topic's journal: the first above the floor (a hole from erased rows is stepped over). */
const oldestRetained = (topic: string, floor: number, head: number) =>
  Effect.gen(function*() {
    const journal = yield* Journal
    let after = floor
    while (after < head) {
      const page = yield* journal.read(topic, after, 1, { maxPayloadBytes: 0 })
      const row = page.rows[0]
      if (row !== undefined) return Option.some(row)
      if (page.through <= after) break
      after = page.through
    }
    return Option.none()
  })

/** A node's base URL as given to `--url`: http or https, without a trailing slash. */
const nodeUrl = (text: string) => {
  const url = URL.canParse(text.trim()) ? new URL(text.trim()) : undefined
  if (url === undefined || (url.protocol !== "http:" && url.protocol !== "https:")) {
    return Effect.fail(
      ValidationError.invalidValue(
        HelpDoc.p(`--url must be a node's http(s) base URL, like http://host:4000; got "${text}"`)
      )
    )
  }
  return Effect.succeed(url.href.replace(/\/+$/, ""))
}

/** How long each request to a running node may take. */
const nodeTimeout = "5 seconds"

/** Why asking a node failed, in words that fit on the node's line. */
const reasonOf = (
  error: HttpClientError.HttpClientError | ParseResult.ParseError | Cause.TimeoutException,
  path: string
): string => {
  switch (error._tag) {
    case "TimeoutException":
      return `no answer on ${path} within ${nodeTimeout}`
    case "ParseError": {
      const issue = ParseResult.ArrayFormatter.formatErrorSync(error)[0]
      const where = issue === undefined || issue.path.length === 0 ? "" : ` at ${issue.path.join(".")}`
      return `${path} answered something that is not a node status${where}: ${issue?.message ?? error.message}`
    }
    case "ResponseError":
      return error.reason === "StatusCode"
        ? `${path} answered ${error.response.status}${error.response.status === 404 ? " (a node without it?)" : ""}`
        : `${path} answered an unreadable body`
    case "RequestError": {
      // the transport's own reason (ECONNREFUSED, ENOTFOUND, …) says more than "Transport error"
      const cause: unknown = error.cause
      const code = typeof cause === "object" && cause !== null && "code" in cause ? cause.code : undefined
      return typeof code === "string" ? code : error.message
    }
  }
}

/** A running node's readiness (`/readyz`) and status (`/statusz`), each failure kept apart from the other. */
const askNode = (base: string) =>
  Effect.gen(function*() {
    const client = yield* HttpClient.HttpClient
    const readiness = client.get(`${base}/readyz`).pipe(
      Effect.flatMap((response) =>
        Effect.map(
          response.text,
          (body) => response.status === 200 ? "ready" : `not ready (${response.status} ${body.trim()})`
        )
      ),
      Effect.scoped,
      Effect.timeout(nodeTimeout),
      Effect.mapError((error) => reasonOf(error, "/readyz")),
      Effect.either
    )
    const status = client.get(`${base}${NodeStatus.statusPath}`).pipe(
      Effect.flatMap(HttpClientResponse.filterStatusOk),
      Effect.flatMap(HttpClientResponse.schemaBodyJson(NodeStatus.NodeStatus)),
      Effect.scoped,
      Effect.timeout(nodeTimeout),
      Effect.mapError((error) => reasonOf(error, NodeStatus.statusPath)),
      Effect.either
    )
    return yield* Effect.all({ readiness, status }, { concurrency: 2 })
  }).pipe(Effect.provide(NodeHttpClient.layerUndici))

/** The node's line: readiness, then what it holds. */
const nodeLine = (base: string, answers: Effect.Effect.Success<ReturnType<typeof askNode>>): string => {
  const { readiness, status } = answers
  if (Either.isLeft(readiness)) return `node ${base}: unreachable (${readiness.left})`
  const holds = Either.match(status, {
    onLeft: (reason) => `; no status: ${reason}`,
    onRight: (s) =>
      ` draining=${s.draining} sockets=${s.sockets} max_sockets=${s.maxSockets} subscriptions=${s.subscriptions} ` +
      `uptime_seconds=${s.uptimeSeconds}`
  })
  return `node ${base}: ${readiness.right}${holds}`
}

export const command = Command.make(
  "status",
  {
    url: Options.text("url").pipe(
      Options.withDescription(
        "A running node's base URL (http://host:port): its readiness, sockets and subscribers per topic too"
      ),
      Options.mapEffect(nodeUrl),
      Options.optional
    )
  },
  (args) =>
    Effect.gen(function*() {
      const answers = yield* Effect.transposeMapOption(args.url, askNode)
      // the running node's subscribers by topic, when it told them
      const subscribers = Option.flatMap(answers, (a) => Either.getRight(a.status)).pipe(
        Option.map((status) => new Map(status.topics.map((t) => [t.topic, t.subscribers])))
      )
      const sequencer = yield* Sequencer
      const topics = (yield* sequencer.topics).map((t) => t.topic)
      const positions = yield* sequencer.positions(topics)
      const cursors = yield* (yield* OutboxStore).cursors
      for (const position of positions) {
        const oldest = yield* oldestRetained(position.topic, position.retentionFloor, position.head).pipe(
          Effect.catchTags({
            StaleCursor: () => Effect.succeed(Option.none()),
            UnknownTopic: () => Effect.succeed(Option.none())
          })
        )
        const outbox = cursors.filter((c) => c.topic === position.topic).map((c) => `${c.sink}:${c.watermark}`)
        yield* Console.log(
          [
            position.topic,
            `head=${position.head}`,
            `retention_floor=${position.retentionFloor}`,
            `oldest_retained=${
              Option.match(oldest, {
                onNone: () => "none",
                onSome: (row) => `${row.watermark}@${row.insertedAt.toISOString()}`
              })
            }`,
            `epoch=${position.epoch}`,
            ...(outbox.length === 0 ? [] : [`outbox=${outbox.join(",")}`]),
            ...Option.match(subscribers, {
              onNone: () => [],
              onSome: (byTopic) => [`subscribers=${byTopic.get(position.topic) ?? 0}`]
            })
          ].join(" ")
        )
      }
      // a topic the node serves that this database does not list (the node runs on another database?)
      if (Option.isSome(subscribers)) {
        const listed = new Set(topics)
        for (const [topic, count] of subscribers.value) {
          if (!listed.has(topic)) yield* Console.log(`${topic} subscribers=${count} (not in this database)`)
        }
      }
      if (Option.isSome(args.url) && Option.isSome(answers)) {
        yield* Console.log(nodeLine(args.url.value, answers.value))
      }
    })
).pipe(
  Command.withDescription(
    "Print each topic's head, retention floor, oldest retained row, epoch and outbox cursors, from the database; " +
      "with --url, a running node's readiness, sockets and subscribers per topic"
  ),
  Command.provide(Outbox.layerStore),
  Command.provide(layerKhala)
)
