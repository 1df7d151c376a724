/**
 * Khala's metrics (docs/metrics.md): every instrument in one place, recorded where the engine, the storage and the server
 * do the work, and exposed by the server's `GET /metrics`. Labels are bounded: topics (the catalog's), reasons (fixed
 * lists) and client versions (capped, see `clientLabels`); never a document key, an org or a user.
 *
 * The instruments are Effect `Metric`s in Effect's process-wide registry. The hot paths (a live batch per socket, a
 * publish) record with `unsafeUpdate` and a label array kept per topic, so a recording is a map hit and an add, with
 * no Effect to run and no key to build.
 */
import type { MetricLabel as Label } from "effect"
import { Config, Effect, Layer, Metric, MetricBoundaries, MetricLabel } from "effect"

/**
 * Whether instruments record. On by default; `KHALA_METRICS=false` turns recording off process-wide (the registry
 * is process-wide too), which is what the overhead bench compares against.
 */
let recording = true

/** Sets whether instruments record, from `KHALA_METRICS` (default true), for the layer's lifetime and after. */
export const layerConfig: Layer.Layer<never> = Layer.effectDiscard(
  Effect.flatMap(
    Config.boolean("KHALA_METRICS").pipe(
      Config.withDefault(true),
      Config.withDescription("Record the metrics served at GET /metrics"),
      Effect.orElseSucceed(() => true)
    ),
    (on) => Effect.sync(() => (recording = on))
  )
)

/** Whether instruments record now. */
export const isRecording = () => recording

const seconds = (boundaries: ReadonlyArray<number>) => MetricBoundaries.fromIterable(boundaries)
/** From 0.5 ms to 10 s: commit-to-socket lag and publish latency are in the milliseconds when healthy. */
const latencyBoundaries = seconds([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10])
/** From 1 ms to 2 min: a replay reads the journal from a resume point, which may be days behind. */
const replayBoundaries = seconds([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 120])

// Sockets and clients

export const sockets = Metric.gauge("khala_sockets", { description: "Open WebSocket connections" })
export const upgradeRefusals = Metric.counter("khala_upgrade_refusals_total", {
  description: "WebSocket upgrades refused, by reason (auth reasons, capacity)",
  incremental: true
})
export const joins = Metric.counter("khala_joins_total", { description: "sync:v1 channel joins", incremental: true })
export const clients = Metric.gauge("khala_clients", {
  description: "Joined channels by client build and protocol version (capped: rare values are counted as other)"
})

// Subscriptions and delivery

export const subscriptions = Metric.gauge("khala_subscriptions", { description: "Live topic subscriptions, by topic" })
export const subscribes = Metric.counter("khala_subscribes_total", {
  description: "Topic subscriptions started, by topic",
  incremental: true
})
export const replayDuration = Metric.histogram(
  "khala_replay_duration_seconds",
  replayBoundaries,
  "Time from a subscription's start to the end of its replay, by topic"
)
export const replayRows = Metric.counter("khala_replay_rows_total", {
  description: "Journal rows sent by replays (before the replay reached the head), by topic",
  incremental: true
})
export const catchupRows = Metric.counter("khala_catchup_rows_total", {
  description: "Journal rows sent by subscriptions catching up from the journal after falling behind, by topic",
  incremental: true
})
export const liveLag = Metric.histogram(
  "khala_live_lag_seconds",
  latencyBoundaries,
  "Live delivery lag: the oldest row of a live batch's commit (inserted_at) to its write to a socket, by topic"
)
export const sendBufferBytes = Metric.gauge("khala_send_buffer_bytes", {
  description: "Bytes queued to sockets and not yet handed to the kernel, over all sockets"
})
export const sendBufferMaxBytes = Metric.gauge("khala_send_buffer_max_bytes", {
  description: "The largest send buffer of one socket"
})
export const slowConsumerCloses = Metric.counter("khala_slow_consumer_closes_total", {
  description: "Sockets closed because their send buffer stayed over its limit",
  incremental: true
})
export const staleCursors = Metric.counter("khala_stale_cursors_total", {
  description: "stale_cursor answers, by topic and reason (below_floor, past_head, epoch_changed, pruned_live)",
  incremental: true
})
export const refusals = Metric.counter("khala_refusals_total", {
  description: "Frames and requests refused on open sockets, by reason (rate_limited, payload_too_large, ...)",
  incremental: true
})

// Publishing, reads and wake-ups

export const publishDuration = Metric.histogram(
  "khala_publish_duration_seconds",
  latencyBoundaries,
  "Publisher.publish from call to durable outcome, by path (group_commit, single, caller_transaction)"
)
export const publishes = Metric.counter("khala_publishes_total", {
  description: "Publishes, by topic and outcome (ok, error)",
  incremental: true
})
export const groupCommitBatchSize = Metric.histogram(
  "khala_group_commit_batch_size",
  MetricBoundaries.fromIterable([1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 5000]),
  "Publishes per group-commit transaction"
)
export const journalReads = Metric.counter("khala_journal_reads_total", {
  description: "Journal reads, by source (tail: one per topic per process; subscription: replays and catch-ups)",
  incremental: true
})
export const headPolls = Metric.counter("khala_head_polls_total", {
  description: "Polls of the served topics' heads",
  incremental: true
})
export const notifySent = Metric.counter("khala_notify_sent_total", {
  description: "NOTIFY head hints sent to other processes",
  incremental: true
})
export const notifyReceived = Metric.counter("khala_notify_received_total", {
  description: "NOTIFY head hints received from other processes",
  incremental: true
})

// Retention

export const retentionFloor = Metric.gauge("khala_retention_floor", {
  description: "The highest watermark pruned, by topic"
})
export const oldestRetainedAge = Metric.gauge("khala_oldest_retained_age_seconds", {
  description: "Age of the oldest row still in the journal, by topic (0 when the journal is empty)"
})
export const retentionPruned = Metric.counter("khala_retention_pruned_rows_total", {
  description: "Journal rows pruned by retention, by topic",
  incremental: true
})

/** Label arrays kept per key: an instrument looks its series up by the array's identity (see the module comment). */
const labelCache = (name: string) => {
  const cache = new Map<string, ReadonlyArray<Label.MetricLabel>>()
  return (value: string): ReadonlyArray<Label.MetricLabel> => {
    let labels = cache.get(value)
    if (labels === undefined) {
      labels = [MetricLabel.make(name, value)]
      cache.set(value, labels)
    }
    return labels
  }
}

/** `topic=<topic>`; topics are bounded by the catalog (an unknown topic is refused before anything is recorded). */
export const topicLabel = labelCache("topic")
/** `reason=<reason>`; reasons come from fixed lists. */
export const reasonLabel = labelCache("reason")
/** `source=<source>` */
export const sourceLabel = labelCache("source")
/** `path=<path>` */
export const pathLabel = labelCache("path")

const twoLabels = new Map<string, ReadonlyArray<Label.MetricLabel>>()
/** `topic=<topic>, <name>=<value>` */
export const topicAnd = (topic: string, name: string, value: string): ReadonlyArray<Label.MetricLabel> => {
  const key = `${topic}\u0000${name}\u0000${value}`
  let labels = twoLabels.get(key)
  if (labels === undefined) {
    labels = [MetricLabel.make("topic", topic), MetricLabel.make(name, value)]
    twoLabels.set(key, labels)
  }
  return labels
}

const none: ReadonlyArray<Label.MetricLabel> = []

/** Adds `amount` to a counter or gauge. */
export const add = (
  metric: Metric.Metric.Counter<number> | Metric.Metric.Gauge<number>,
  amount = 1,
  labels: ReadonlyArray<Label.MetricLabel> = none
): void => {
  if (recording) metric.unsafeModify(amount, labels)
}

/** Sets a gauge, or records a value in a histogram. */
export const record = (
  metric: Metric.Metric.Gauge<number> | Metric.Metric.Histogram<number>,
  value: number,
  labels: ReadonlyArray<Label.MetricLabel> = none
): void => {
  if (recording) metric.unsafeUpdate(value, labels)
}

/** `add` as an Effect. */
export const increment = (
  metric: Metric.Metric.Counter<number> | Metric.Metric.Gauge<number>,
  amount = 1,
  labels: ReadonlyArray<Label.MetricLabel> = none
): Effect.Effect<void> => Effect.sync(() => add(metric, amount, labels))

/** Most distinct client builds a process labels; later ones are counted as `other`, so the series stay few. */
const maxClientBuilds = 32
const seenBuilds = new Set<string>()
const labelValue = /^[A-Za-z0-9._+-]{1,40}$/

/**
 * The labels of a joined client: its `client_build_id` and `protocol_version` as `phx_join` gave them (protocol.md §5),
 * `none` when absent, `other` when malformed or past the first `maxClientBuilds` builds seen.
 */
export const clientLabels = (build: unknown, protocolVersion: unknown): ReadonlyArray<Label.MetricLabel> => {
  let buildValue = "none"
  if (typeof build === "string") {
    if (!labelValue.test(build)) buildValue = "other"
    else if (seenBuilds.has(build) || seenBuilds.size < maxClientBuilds) {
      seenBuilds.add(build)
      buildValue = build
    } else buildValue = "other"
  } else if (build !== undefined && build !== null) buildValue = "other"
  const version = protocolVersion === undefined || protocolVersion === null
    ? "none"
    : (typeof protocolVersion === "number" && Number.isInteger(protocolVersion) && protocolVersion >= 0 &&
        protocolVersion < 1000) ||
        (typeof protocolVersion === "string" && /^\d{1,3}$/.test(protocolVersion))
    ? String(protocolVersion)
    : "other"
  const key = `${buildValue}\u0000${version}`
  let labels = clientLabelCache.get(key)
  if (labels === undefined) {
    labels = [MetricLabel.make("client_build", buildValue), MetricLabel.make("protocol_version", version)]
    clientLabelCache.set(key, labels)
  }
  return labels
}
const clientLabelCache = new Map<string, ReadonlyArray<Label.MetricLabel>>()
