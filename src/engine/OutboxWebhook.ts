/**
 * The built-in outbox sink (outbox.md): a webhook that receives each batch as a JSON `POST`, and its
 * configuration for `khala serve`.
 */
import { HttpClient, HttpClientRequest } from "@effect/platform"
import { Config, ConfigError, Duration, Effect, Either, Layer, Option, Schedule } from "effect"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import type { Journal } from "../services/Journal.js"
import { rowJson } from "../services/Journal.js"
import { OutboxDeliveryError, OutboxSink } from "../services/OutboxSink.js"
import type { OutboxStore } from "../services/OutboxStore.js"
import { durationWithin, integerWithin } from "../services/Settings.js"
import type { Wakeups } from "../services/Wakeups.js"
import * as Outbox from "./Outbox.js"

export interface WebhookOptions {
  readonly name: string
  readonly url: string
  /** Each attempt's bound. */
  readonly timeout: Duration.DurationInput
  /** Attempts after the first before the delivery fails (the outbox then tries the batch again later). */
  readonly retries: number
}

/**
 * A sink that `POST`s `{sink, topic, rows}` to a URL; any 2xx acknowledges the rows. Each attempt is bounded by the
 * timeout and retried with jittered exponential backoff. The receiver may see a batch twice (at least once), so it
 * should deduplicate by `(topic, watermark)`.
 */
export const makeWebhook = (options: WebhookOptions) =>
  Effect.map(HttpClient.HttpClient, (client) => {
    const ok = HttpClient.filterStatusOk(client)
    const retry = Schedule.exponential("200 millis").pipe(
      Schedule.jittered,
      Schedule.intersect(Schedule.recurs(options.retries))
    )
    return OutboxSink.of({
      name: options.name,
      deliver: (topic, rows) =>
        HttpClientRequest.post(options.url).pipe(
          HttpClientRequest.setHeader(
            "khala-outbox-range",
            `${rows[0]?.watermark}-${rows[rows.length - 1]?.watermark}`
          ),
          HttpClientRequest.bodyUnsafeJson({ sink: options.name, topic, rows: rows.map(rowJson) }),
          ok.execute,
          Effect.scoped,
          Effect.timeoutFail({
            duration: options.timeout,
            onTimeout: () => new Error(`no answer within ${Duration.format(options.timeout)}`)
          }),
          Effect.retry(retry),
          Effect.mapError((error) =>
            new OutboxDeliveryError({ sink: options.name, topic, message: error.message, cause: error })
          ),
          Effect.asVoid
        )
    })
  })

const httpUrl = Config.string("KHALA_OUTBOX_WEBHOOK_URL").pipe(
  Config.validate({
    message: "must be an http:// or https:// URL",
    validation: (text) => {
      try {
        const url = new URL(text)
        return url.protocol === "http:" || url.protocol === "https:"
      } catch {
        return false
      }
    }
  })
)

export const OutboxConfig = Config.all({
  url: Config.option(httpUrl).pipe(
    Config.withDescription("Mirror the journal to this webhook (POST of JSON rows); unset: no outbox")
  ),
  topics: Config.array(Config.string(), "KHALA_OUTBOX_TOPICS").pipe(
    Config.option,
    Config.withDescription("Topics to mirror, comma-separated, dotted or enum names (default: every catalog topic)")
  ),
  sink: Config.string("KHALA_OUTBOX_SINK").pipe(
    Config.validate({ message: "must not be empty", validation: (name) => name.trim() !== "" }),
    Config.withDefault("webhook"),
    Config.withDescription("The name the webhook's cursors are kept under")
  ),
  batchSize: integerWithin("KHALA_OUTBOX_BATCH_SIZE", 1, 10_000).pipe(
    Config.withDefault(100),
    Config.withDescription("Most rows per webhook request")
  ),
  timeout: durationWithin("KHALA_OUTBOX_TIMEOUT", "10 millis", "10 minutes").pipe(
    Config.withDefault(Duration.seconds(10)),
    Config.withDescription("Bound of each webhook request")
  ),
  retries: integerWithin("KHALA_OUTBOX_RETRIES", 0, 100).pipe(
    Config.withDefault(3),
    Config.withDescription("Retries of a webhook request before the outbox backs off and tries the batch again")
  )
})

/**
 * The webhook outbox for `khala serve`, when `KHALA_OUTBOX_WEBHOOK_URL` is set: its topics are checked against the
 * catalog at start (an unknown one is a configuration error), then forwarded for the scope.
 */
export const layerConfig: Layer.Layer<
  never,
  ConfigError.ConfigError,
  HttpClient.HttpClient | TopicCatalog | OutboxStore | Journal | Wakeups
> = Layer.scopedDiscard(Effect.gen(function*() {
  const config = yield* OutboxConfig
  if (Option.isNone(config.url)) return
  const catalog = yield* TopicCatalog
  const names = Option.match(config.topics, {
    onNone: () => catalog.topics.map((topic) => topic.wireName),
    onSome: (topics) => topics.map((topic) => topic.trim()).filter((topic) => topic !== "")
  })
  const topics: Array<string> = []
  for (const name of names) {
    const resolved = catalog.resolve(name)
    if (Either.isLeft(resolved)) {
      return yield* Effect.fail(ConfigError.InvalidData(["KHALA_OUTBOX_TOPICS"], `unknown topic "${name}"`))
    }
    if (!topics.includes(resolved.right.wireName)) topics.push(resolved.right.wireName)
  }
  const sink = yield* makeWebhook({
    name: config.sink.trim(),
    url: config.url.value,
    timeout: config.timeout,
    retries: config.retries
  })
  yield* Outbox.run({ topics, batchSize: config.batchSize }).pipe(
    Effect.provideService(OutboxSink, sink),
    Effect.forkScoped
  )
}))
