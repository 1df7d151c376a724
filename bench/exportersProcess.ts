/**
 * The metric exporters measured in a process of their own (see `exporters.ts`), so that no other scenario's series sit
 * in Effect's process-wide registry and no other code has shaped the JIT's view of the instruments.
 *
 * Both registries hold the same series: Khala's instruments (`services/Metrics.ts`) recorded for every topic and every
 * label value the server uses, and prom-client instruments made from their keys (same names, help, labels and
 * buckets) holding the same values. A scrape is timed over each; then each kind of update is timed the way Khala
 * records on its hot paths, with the label set found through a per-topic cache on both sides.
 */
import type { MetricLabel } from "effect"
import { Effect, Metric, MetricKeyType, MetricState, Option } from "effect"
import { Counter, Gauge, Histogram, Registry, Summary } from "prom-client"
import * as Exporter from "../src/server/Metrics.js"
import * as Metrics from "../src/services/Metrics.js"
import { answer } from "./ipc.js"

export interface ExportersRequest {
  /** Updates per timed round. */
  readonly updates: number
  readonly rounds: number
  readonly topics: number
  readonly scrapes: number
}

/** Nanoseconds per update, the median round of each candidate. */
export interface UpdateCost {
  readonly operation: string
  readonly effect: number
  readonly promClient: number
  /** prom-client given a label object each time instead of a child from `labels()`, where labels apply. */
  readonly promClientLabelObject?: number | undefined
}

/** Milliseconds per scrape, median, and the size of what it renders. */
export interface ScrapeCost {
  /** What `/metrics` does: `@effect/opentelemetry`'s producer into exporter-prometheus. */
  readonly otel: number
  readonly promClient: number
  readonly lines: number
  readonly bytes: number
}

export type ExportersProtocol = {
  readonly run: {
    readonly request: ExportersRequest
    readonly response: { readonly updates: ReadonlyArray<UpdateCost>; readonly scrape: ScrapeCost }
  }
}

const median = (samples: ReadonlyArray<number>) => [...samples].sort((a, b) => a - b)[Math.floor(samples.length / 2)]!

/** Nanoseconds per update of `run(updates)`. */
const timed = (updates: number, run: (updates: number) => void) => {
  const start = process.hrtime.bigint()
  run(updates)
  return Number(process.hrtime.bigint() - start) / updates
}

/** Times each candidate over `rounds` rounds in rotating order, after a warm-up round each; the median of each. */
const compare = <K extends string>(
  updates: number,
  rounds: number,
  candidates: Record<K, (updates: number) => void>
): Record<K, number> => {
  const names = Object.keys(candidates) as Array<K>
  for (const name of names) timed(updates, candidates[name])
  const samples = new Map<K, Array<number>>(names.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(i + round) % names.length]!
      samples.get(name)!.push(timed(updates, candidates[name]))
    }
  }
  return Object.fromEntries(names.map((name) => [name, median(samples.get(name)!)])) as Record<K, number>
}

/** Milliseconds per call of `scrape`, median of `scrapes` after three discarded. */
const scrapeTime = async (scrapes: number, scrape: () => Promise<string> | string) => {
  for (let i = 0; i < 3; i++) await scrape()
  const samples: Array<number> = []
  for (let i = 0; i < scrapes; i++) {
    const start = process.hrtime.bigint()
    await scrape()
    samples.push(Number(process.hrtime.bigint() - start) / 1e6)
  }
  return median(samples)
}

/** Seconds from 0.1 ms to 20 s, spread over a log scale in a fixed shuffled order (the same for both). */
const observations = Float64Array.from({ length: 4096 }, (_, i) => 1e-4 * Math.pow(2e5, ((i * 1597) % 4096) / 4096))
const mask = observations.length - 1

const upgradeReasons = ["missing_token", "malformed", "unknown_key", "bad_signature", "expired", "max_sockets"]
const refusalReasons = ["rate_limited", "payload_too_large", "bad_subscription", "forbidden_topic", "stale_cursor"]
const staleReasons = ["below_floor", "past_head", "epoch_changed", "pruned_live"]

type Instrument = Metric.Metric.Counter<number> | Metric.Metric.Gauge<number> | Metric.Metric.Histogram<number>
type Labels = ReadonlyArray<MetricLabel.MetricLabel>

/** Every instrument of Khala's with the label sets the server records it under, for `topics`. */
const khalaSeries = (topics: ReadonlyArray<string>): ReadonlyArray<readonly [Instrument, ReadonlyArray<Labels>]> => {
  const byTopic = topics.map(Metrics.topicLabel)
  const none = [[]]
  return [
    [Metrics.sockets, none],
    [Metrics.upgradeRefusals, upgradeReasons.map(Metrics.reasonLabel)],
    [Metrics.joins, none],
    [Metrics.clients, [Metrics.clientLabels("web-1.2.3", 1), Metrics.clientLabels(undefined, undefined)]],
    [Metrics.subscriptions, byTopic],
    [Metrics.subscribes, byTopic],
    [Metrics.replayDuration, byTopic],
    [Metrics.replayRows, byTopic],
    [Metrics.catchupRows, byTopic],
    [Metrics.liveLag, byTopic],
    [Metrics.sendBufferBytes, none],
    [Metrics.sendBufferMaxBytes, none],
    [Metrics.slowConsumerCloses, none],
    [Metrics.staleCursors, topics.flatMap((topic) => staleReasons.map((r) => Metrics.topicAnd(topic, "reason", r)))],
    [Metrics.refusals, refusalReasons.map(Metrics.reasonLabel)],
    [Metrics.publishDuration, ["group_commit", "single", "caller_transaction"].map(Metrics.pathLabel)],
    [Metrics.publishes, topics.flatMap((topic) => ["ok", "error"].map((o) => Metrics.topicAnd(topic, "outcome", o)))],
    [Metrics.groupCommitBatchSize, none],
    [Metrics.journalReads, ["tail", "subscription"].map(Metrics.sourceLabel)],
    [Metrics.headPolls, none],
    [Metrics.notifySent, none],
    [Metrics.notifyReceived, none],
    [Metrics.retentionFloor, byTopic],
    [Metrics.oldestRetainedAge, byTopic],
    [Metrics.retentionPruned, byTopic]
  ]
}

/** Observations each histogram series starts with. */
const seeded = 5

/** Records every series once: counters by 3, gauges to 7, histograms `seeded` observations. */
const seedKhala = (topics: ReadonlyArray<string>) => {
  for (const [metric, labelSets] of khalaSeries(topics)) {
    for (const labels of labelSets) {
      if (MetricKeyType.isHistogramKey(metric.keyType)) {
        for (let i = 0; i < seeded; i++) {
          Metrics.record(metric as Metric.Metric.Histogram<number>, observations[i]!, labels)
        }
      } else if (MetricKeyType.isGaugeKey(metric.keyType)) {
        Metrics.record(metric as Metric.Metric.Gauge<number>, 7, labels)
      } else Metrics.add(metric as Metric.Metric.Counter<number>, 3, labels)
    }
  }
}

type PromInstrument = Counter | Gauge | Histogram

/** prom-client instruments holding what Effect's registry holds for Khala's series, by name. */
const mirrorKhala = (registry: Registry) => {
  const instruments = new Map<string, PromInstrument>()
  for (const { metricKey, metricState } of Metric.unsafeSnapshot()) {
    if (!metricKey.name.startsWith("khala_")) continue
    const labels = Object.fromEntries(metricKey.tags.map((tag) => [tag.key, tag.value]))
    let instrument = instruments.get(metricKey.name)
    if (instrument === undefined) {
      const config = {
        name: metricKey.name,
        help: Option.getOrElse(metricKey.description, () => metricKey.name),
        labelNames: metricKey.tags.map((tag) => tag.key),
        registers: [registry]
      }
      instrument = MetricKeyType.isHistogramKey(metricKey.keyType)
        ? new Histogram({ ...config, buckets: metricKey.keyType.boundaries.values.filter(Number.isFinite) })
        : MetricKeyType.isGaugeKey(metricKey.keyType)
        ? new Gauge(config)
        : new Counter(config)
      instruments.set(metricKey.name, instrument)
    }
    if (MetricState.isHistogramState(metricState)) {
      for (let i = 0; i < seeded; i++) (instrument as Histogram).observe(labels, observations[i]!)
    } else if (MetricState.isGaugeState(metricState)) (instrument as Gauge).set(labels, Number(metricState.value))
    else if (MetricState.isCounterState(metricState)) (instrument as Counter).inc(labels, Number(metricState.count))
  }
  return instruments
}

/** A child per topic from `labels()`, found the way `Metrics.topicLabel` finds its label arrays. */
const childCache = <C>(make: (topic: string) => C) => {
  const cache = new Map<string, C>()
  return (topic: string): C => {
    let child = cache.get(topic)
    if (child === undefined) {
      child = make(topic)
      cache.set(topic, child)
    }
    return child
  }
}

const run = ({ rounds, scrapes, topics: topicCount, updates }: ExportersRequest) =>
  Effect.gen(function*() {
    const topics = Array.from({ length: topicCount }, (_, i) => `bench.topic_${i}`)
    seedKhala(topics)
    const registry = new Registry()
    const prom = mirrorKhala(registry)
    const exporter = yield* Exporter.MetricsExporter
    const scrapeOtel = () => Effect.runPromise(exporter.scrape)
    const scrape = yield* Effect.promise(async (): Promise<ScrapeCost> => {
      const text = await scrapeOtel()
      return {
        otel: await scrapeTime(scrapes, scrapeOtel),
        promClient: await scrapeTime(scrapes, () => registry.metrics()),
        lines: text.split("\n").filter((line) => line !== "" && !line.startsWith("#")).length,
        bytes: Buffer.byteLength(text)
      }
    })
    return { updates: updateCosts(updates, rounds, topics, registry, prom), scrape }
  }).pipe(Effect.provide(Exporter.layer), Effect.runPromise)

/** Each kind of update, timed on both sides. */
const updateCosts = (
  updates: number,
  rounds: number,
  topics: ReadonlyArray<string>,
  registry: Registry,
  prom: ReadonlyMap<string, PromInstrument>
): ReadonlyArray<UpdateCost> => {
  const promCounter = prom.get("khala_head_polls_total") as Counter
  const promRows = prom.get("khala_replay_rows_total") as Counter<"topic">
  const promLag = prom.get("khala_live_lag_seconds") as Histogram<"topic">
  const promBuffer = prom.get("khala_send_buffer_bytes") as Gauge
  const rowsChild = childCache((topic) => promRows.labels({ topic }))
  const lagChild = childCache((topic) => promLag.labels({ topic }))
  const quantiles = [0.5, 0.9, 0.99]
  const effectSummary = Metric.summary({
    name: "bench_summary_seconds",
    maxAge: "60 seconds",
    maxSize: 1000,
    error: 0.01,
    quantiles
  })
  const promSummary = new Summary({
    name: "bench_summary_seconds",
    help: "bench",
    labelNames: ["topic"],
    percentiles: quantiles,
    maxAgeSeconds: 60,
    ageBuckets: 5,
    registers: [registry]
  })
  const summaryChild = childCache((topic) => promSummary.labels({ topic }))
  const n = topics.length

  const costs: Array<UpdateCost> = []
  const counter = compare(updates, rounds, {
    effect: (k) => {
      for (let i = 0; i < k; i++) Metrics.add(Metrics.headPolls)
    },
    promClient: (k) => {
      for (let i = 0; i < k; i++) promCounter.inc()
    }
  })
  costs.push({ operation: "counter increment", ...counter })
  const tagged = compare(updates, rounds, {
    effect: (k) => {
      for (let i = 0; i < k; i++) Metrics.add(Metrics.replayRows, 1, Metrics.topicLabel(topics[i % n]!))
    },
    promClient: (k) => {
      for (let i = 0; i < k; i++) rowsChild(topics[i % n]!).inc(1)
    },
    promClientLabelObject: (k) => {
      for (let i = 0; i < k; i++) promRows.inc({ topic: topics[i % n]! }, 1)
    }
  })
  costs.push({ operation: "counter increment, topic label", ...tagged })
  const histogram = compare(updates, rounds, {
    effect: (k) => {
      for (let i = 0; i < k; i++) {
        Metrics.record(Metrics.liveLag, observations[i & mask]!, Metrics.topicLabel(topics[i % n]!))
      }
    },
    promClient: (k) => {
      for (let i = 0; i < k; i++) lagChild(topics[i % n]!).observe(observations[i & mask]!)
    },
    promClientLabelObject: (k) => {
      for (let i = 0; i < k; i++) promLag.observe({ topic: topics[i % n]! }, observations[i & mask]!)
    }
  })
  costs.push({ operation: "histogram observe, topic label", ...histogram })
  const summary = compare(updates, rounds, {
    effect: (k) => {
      for (let i = 0; i < k; i++) {
        effectSummary.unsafeUpdate(observations[i & mask]!, Metrics.topicLabel(topics[i % n]!))
      }
    },
    promClient: (k) => {
      for (let i = 0; i < k; i++) summaryChild(topics[i % n]!).observe(observations[i & mask]!)
    },
    promClientLabelObject: (k) => {
      for (let i = 0; i < k; i++) promSummary.observe({ topic: topics[i % n]! }, observations[i & mask]!)
    }
  })
  costs.push({ operation: "summary observe, topic label", ...summary })
  const gauge = compare(updates, rounds, {
    effect: (k) => {
      for (let i = 0; i < k; i++) Metrics.record(Metrics.sendBufferBytes, i)
    },
    promClient: (k) => {
      for (let i = 0; i < k; i++) promBuffer.set(i)
    }
  })
  costs.push({ operation: "gauge set", ...gauge })
  return costs
}

answer<ExportersProtocol>({ run })
