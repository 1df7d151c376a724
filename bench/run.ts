/**
 * `npm run bench [-- --seconds 5 --writers 8]`: measures Khala against baselines run in the same process on the same
 * machine and database, prints a table and writes bench/results/latest.json.
 *
 * Needs a Postgres server: KHALA_BENCH_DATABASE_URL (default postgres://postgres@127.0.0.1:5432/postgres); each run
 * creates its own database and drops it.
 */
import { Effect } from "effect"
import { mkdirSync, writeFileSync } from "node:fs"
import { cpus, totalmem } from "node:os"
import { parseArgs } from "node:util"
import { deliveryScenario } from "./delivery.js"
import { publishScenarios } from "./publish.js"
import type { Figure } from "./report.js"
import { printTable } from "./report.js"

const { values } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    writers: { type: "string", default: "8" },
    subscribers: { type: "string", default: "100" },
    rate: { type: "string", default: "200" }
  }
})

const options = {
  seconds: Number(values.seconds),
  writers: Number(values.writers),
  subscribers: Number(values.subscribers),
  rate: Number(values.rate)
}

const main = Effect.gen(function*() {
  const figures: Array<Figure> = []
  figures.push(...(yield* publishScenarios(options)))
  figures.push(...(yield* deliveryScenario(options)))
  printTable(figures)
  const results = new URL("./results/", import.meta.url)
  mkdirSync(results, { recursive: true })
  writeFileSync(
    new URL("latest.json", results),
    JSON.stringify({ at: new Date().toISOString(), machine: machine(), options, figures }, null, 2) + "\n"
  )
})

const machine = () => ({
  node: process.version,
  cpus: cpus().length,
  cpu: cpus()[0]?.model,
  memoryGiB: Math.round(totalmem() / 2 ** 30)
})

Effect.runPromise(main).catch((error) => {
  console.error(error)
  process.exit(1)
})
