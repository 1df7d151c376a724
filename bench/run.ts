/**
 * `npm run bench [-- --only fanout,latency --seconds 5 ...]`: measures Khala against baselines run in the same run on
 * the same machine and database, prints a table and writes bench/results/latest.json. Delivery scenarios run a real
 * `khala serve` (the built dist/) with their load clients in separate processes.
 *
 * `bundle` measures the browser client's bundle and needs no server.
 *
 * Needs a Postgres server: KHALA_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres); each
 * scenario creates its own database and drops it.
 */
import { NodeRuntime } from "@effect/platform-node"
import { Cause, Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { parseArgs } from "node:util"
import { abandonScenario } from "./abandon.js"
import { bundleScenario } from "./bundle.js"
import { drainScenario } from "./drain.js"
import { exportersScenario } from "./exporters.js"
import { fanoutScenario } from "./fanout.js"
import { hydrationScenario } from "./hydration.js"
import { instrumentsScenario } from "./instruments.js"
import { latencyScenario } from "./latency.js"
import { memoryScenario } from "./memory.js"
import { publishScenarios } from "./publish.js"
import { replayScenario } from "./replay.js"
import type { Figure } from "./report.js"
import { printTable } from "./report.js"
import { revokeScenario } from "./revoke.js"
import { stalledScenario } from "./stalled.js"
import { wakeupScenario } from "./wakeups.js"

const { values } = parseArgs({
  options: {
    only: { type: "string" },
    seconds: { type: "string", default: "5" },
    writers: { type: "string", default: "8" },
    "fanout-subscribers": { type: "string", default: "1,100,1000" },
    "fanout-seconds": { type: "string", default: "3" },
    "latency-loads": { type: "string", default: "1000x200,100x1000" },
    "latency-seconds": { type: "string", default: "5" },
    "replay-updates": { type: "string", default: "100000" },
    "replay-batch-size": { type: "string", default: "1000" },
    "hydration-documents": { type: "string", default: "100000" },
    "hydration-page-size": { type: "string", default: "1000" },
    "hydration-subscribers": { type: "string", default: "1000" },
    "hydration-publish-rate": { type: "string", default: "20" },
    "hydration-seconds": { type: "string", default: "5" },
    "hydration-concurrency": { type: "string", default: "4" },
    "memory-sockets": { type: "string", default: "5000" },
    "wakeup-seconds": { type: "string", default: "5" },
    "wakeup-idle-sockets": { type: "string", default: "10" },
    "wakeup-subscribers": { type: "string", default: "100" },
    "wakeup-rate": { type: "string", default: "200" },
    "stalled-sockets": { type: "string", default: "200" },
    "stalled-seconds": { type: "string", default: "15" },
    "stalled-send-buffer": { type: "string" },
    "storm-sockets": { type: "string", default: "3000" },
    "abandon-sockets": { type: "string", default: "3000" },
    "abandon-rows": { type: "string", default: "50000" },
    "abandon-rounds": { type: "string", default: "3" },
    "instruments-subscribers": { type: "string", default: "100,1000" },
    "instruments-seconds": { type: "string", default: "3" },
    "instruments-rounds": { type: "string", default: "2" },
    "drain-sockets": { type: "string", default: "1000" },
    "drain-window": { type: "string", default: "10" },
    "drain-rate": { type: "string", default: "10" },
    "revoke-runs": { type: "string", default: "10" },
    "exporters-updates": { type: "string", default: "200000" },
    "exporters-rounds": { type: "string", default: "5" },
    "exporters-topics": { type: "string", default: "100" },
    "exporters-scrapes": { type: "string", default: "20" }
  }
})

const positive = (name: string, text: string) => {
  const n = Number(text)
  if (!(n > 0)) throw new Error(`--${name} must be a positive number, got ${JSON.stringify(text)}`)
  return n
}
// an empty list is allowed: `--instruments-subscribers ""` measures publishing alone
const list = (name: string, text: string) =>
  text.trim() === "" ? [] : text.split(",").map((item) => positive(name, item.trim()))

const options = {
  publish: { seconds: positive("seconds", values.seconds), writers: positive("writers", values.writers) },
  fanout: {
    subscribers: list("fanout-subscribers", values["fanout-subscribers"]),
    seconds: positive("fanout-seconds", values["fanout-seconds"])
  },
  latency: {
    loads: values["latency-loads"].split(",").map((load) => {
      const [subscribers = "", rate = ""] = load.trim().split("x")
      return { subscribers: positive("latency-loads", subscribers), rate: positive("latency-loads", rate) }
    }),
    seconds: positive("latency-seconds", values["latency-seconds"])
  },
  replay: {
    updates: positive("replay-updates", values["replay-updates"]),
    batchSize: positive("replay-batch-size", values["replay-batch-size"])
  },
  hydration: {
    documents: positive("hydration-documents", values["hydration-documents"]),
    pageSize: positive("hydration-page-size", values["hydration-page-size"]),
    subscribers: positive("hydration-subscribers", values["hydration-subscribers"]),
    publishRate: positive("hydration-publish-rate", values["hydration-publish-rate"]),
    seconds: positive("hydration-seconds", values["hydration-seconds"]),
    concurrency: positive("hydration-concurrency", values["hydration-concurrency"])
  },
  memory: { sockets: positive("memory-sockets", values["memory-sockets"]) },
  wakeup: {
    seconds: positive("wakeup-seconds", values["wakeup-seconds"]),
    idleSockets: positive("wakeup-idle-sockets", values["wakeup-idle-sockets"]),
    busySubscribers: positive("wakeup-subscribers", values["wakeup-subscribers"]),
    rate: positive("wakeup-rate", values["wakeup-rate"])
  },
  instruments: {
    subscribers: list("instruments-subscribers", values["instruments-subscribers"]),
    seconds: positive("instruments-seconds", values["instruments-seconds"]),
    writers: positive("writers", values.writers),
    rounds: positive("instruments-rounds", values["instruments-rounds"])
  },
  revoke: { runs: positive("revoke-runs", values["revoke-runs"]) },
  exporters: {
    updates: positive("exporters-updates", values["exporters-updates"]),
    rounds: positive("exporters-rounds", values["exporters-rounds"]),
    topics: positive("exporters-topics", values["exporters-topics"]),
    scrapes: positive("exporters-scrapes", values["exporters-scrapes"])
  },
  stalled: {
    sockets: Number(values["stalled-sockets"]),
    stormSockets: Number(values["storm-sockets"]),
    seconds: positive("stalled-seconds", values["stalled-seconds"]),
    sendBufferBytes: values["stalled-send-buffer"] === undefined
      ? undefined
      : positive("stalled-send-buffer", values["stalled-send-buffer"])
  },
  abandon: {
    sockets: positive("abandon-sockets", values["abandon-sockets"]),
    rows: positive("abandon-rows", values["abandon-rows"]),
    rounds: positive("abandon-rounds", values["abandon-rounds"])
  },
  drain: {
    sockets: positive("drain-sockets", values["drain-sockets"]),
    windowSeconds: positive("drain-window", values["drain-window"]),
    rate: positive("drain-rate", values["drain-rate"])
  }
}

const scenarios: Record<string, Effect.Effect<ReadonlyArray<Figure>, unknown>> = {
  publish: publishScenarios(options.publish),
  fanout: fanoutScenario(options.fanout),
  latency: latencyScenario(options.latency),
  replay: replayScenario(options.replay),
  hydration: hydrationScenario(options.hydration),
  memory: memoryScenario(options.memory),
  wakeup: wakeupScenario(options.wakeup),
  stalled: stalledScenario(options.stalled),
  abandon: abandonScenario(options.abandon),
  instruments: instrumentsScenario(options.instruments),
  drain: drainScenario(options.drain),
  revoke: revokeScenario(options.revoke),
  exporters: exportersScenario(options.exporters),
  bundle: bundleScenario
}

const selected = values.only === undefined ? Object.keys(scenarios) : values.only.split(",").map((s) => s.trim())
const unknown = selected.filter((name) => !(name in scenarios))
if (unknown.length > 0) {
  throw new Error(`unknown scenario ${unknown.join(", ")}; known: ${Object.keys(scenarios).join(", ")}`)
}

const machine = () => ({
  node: process.version,
  cpus: cpus().length,
  cpu: cpus()[0]?.model,
  memoryGiB: Math.round(totalmem() / 2 ** 30)
})

const main = Effect.gen(function*() {
  const startedAt = Date.now()
  const figures: Array<Figure> = []
  const failures: Array<{ scenario: string; error: string }> = []
  for (const name of selected) {
    const scenarioStart = Date.now()
    console.error(`bench: ${name}…`)
    // A failed scenario is reported and the others still run; its processes were stopped by its scope.
    yield* scenarios[name]!.pipe(
      Effect.map((result) => {
        for (const figure of result) figures.push(figure)
      }),
      Effect.catchAllCause((cause) =>
        Effect.sync(() => {
          const error = Cause.pretty(cause)
          failures.push({ scenario: name, error })
          console.error(`bench: ${name} failed:\n${error}`)
        })
      )
    )
    console.error(`bench: ${name} took ${((Date.now() - scenarioStart) / 1000).toFixed(1)} s`)
  }
  printTable(figures)
  const seconds = (Date.now() - startedAt) / 1000
  const failed = failures.length > 0 ? `, ${failures.length} failed` : ""
  console.log(`\n${selected.length} scenario(s) in ${seconds.toFixed(0)} s${failed}`)
  const results = new URL("./results/", import.meta.url)
  mkdirSync(results, { recursive: true })
  writeFileSync(
    new URL("latest.json", results),
    JSON.stringify(
      { at: new Date().toISOString(), seconds, machine: machine(), scenarios: selected, options, figures, failures },
      null,
      2
    ) + "\n"
  )
  if (failures.length > 0) process.exitCode = 1
})

// runMain interrupts on SIGINT/SIGTERM, so scenario scopes still stop every process they started.
NodeRuntime.runMain(main)
