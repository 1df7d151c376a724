import { Context, Effect, Layer, Schema } from "effect"
import type { JournalRow } from "./Journal.js"

/** A sink refused or did not acknowledge a batch: the outbox delivers it again, from the same cursor. */
export class OutboxDeliveryError extends Schema.TaggedError<OutboxDeliveryError>()("OutboxDeliveryError", {
  sink: Schema.String,
  topic: Schema.String,
  message: Schema.String,
  cause: Schema.optional(Schema.Defect)
}) {}

/** What a sink is given to deliver and acknowledge. */
export interface OutboxSinkShape {
  /** The name the sink's cursors are kept under (`khala.sync_outbox_cursors.sink`): stable across restarts. */
  readonly name: string
  /**
   * Delivers committed journal rows of one topic, in watermark order. Succeeding acknowledges them: the outbox then
   * advances its cursor past them. A failure (or a crash before the cursor moves) means the same rows, or a batch
   * starting with them, come again: a sink sees every row at least once, in order per topic (outbox.md).
   */
  readonly deliver: (
    topic: string,
    rows: ReadonlyArray<JournalRow>
  ) => Effect.Effect<void, OutboxDeliveryError>
}

/** Where the outbox mirrors the journal to: provided by the runtime, or the built-in webhook. */
export class OutboxSink extends Context.Tag("khala/OutboxSink")<OutboxSink, OutboxSinkShape>() {
  /**
   * A sink over a callback: a rejected promise or a thrown error is a failed delivery (retried by the outbox).
   * The callback may return an Effect too.
   */
  static readonly make = (
    name: string,
    deliver: (
      topic: string,
      rows: ReadonlyArray<JournalRow>
    ) => Effect.Effect<void, OutboxDeliveryError> | PromiseLike<void> | void
  ): OutboxSinkShape => ({
    name,
    deliver: (topic, rows) =>
      Effect.suspend(() => {
        const result = deliver(topic, rows)
        if (Effect.isEffect(result)) return result
        return Effect.tryPromise({
          try: async () => {
            await result
          },
          catch: (cause) =>
            new OutboxDeliveryError({
              sink: name,
              topic,
              message: cause instanceof Error ? cause.message : String(cause),
              cause
            })
        })
      }).pipe(
        Effect.catchAllDefect((cause) =>
          Effect.fail(
            new OutboxDeliveryError({
              sink: name,
              topic,
              message: cause instanceof Error ? cause.message : String(cause),
              cause
            })
          )
        )
      )
  })

  /** `make` as a layer. */
  static readonly layer = (
    name: string,
    deliver: Parameters<typeof OutboxSink.make>[1]
  ): Layer.Layer<OutboxSink> => Layer.succeed(OutboxSink, OutboxSink.make(name, deliver))
}
