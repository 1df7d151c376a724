/**
 * HTTP hydration (protocol.md §6): a topic's documents by pages at one snapshot watermark, one document, and batches of up to
 * 1000, authenticated with the same token as the socket. Used for the first load, after `stale_cursor` /
 * `epoch_changed`, and for updates that arrive with `hydration_required` (pointer mode, oversize payloads).
 *
 * @since 0.1.0
 */
import * as Micro from "effect/Micro"
import type { Document, DocumentFilter } from "./Document.js"
import { matchesFilter } from "./Document.js"

/**
 * An HTTP hydration request failed. `code` is the protocol.md §5 code of the answer (`unauthorized`, `forbidden_topic`,
 * `rate_limited`, `internal`, ...), `network` when nothing answered, `bad_response` when the answer did not read.
 *
 * @since 0.1.0
 */
export class HydrationFailed extends Micro.TaggedError("HydrationFailed")<{
  readonly topic: string
  readonly code: string
  readonly status: number | undefined
  readonly detail: string
  readonly retryAfterMs: number | undefined
}> {
  override get message(): string {
    return `hydration of ${this.topic} failed: ${this.code}${
      this.status === undefined ? "" : ` (HTTP ${this.status})`
    }` +
      (this.detail === "" ? "" : `: ${this.detail}`)
  }
}

/**
 * How hydration reaches the server.
 *
 * @since 0.1.0
 */
export interface HttpOptions {
  /** The server's HTTP origin, e.g. `https://sync.example.com`. */
  readonly baseUrl: string
  /** The current token (`Authorization: Bearer`). */
  readonly token: Micro.Micro<string, unknown>
  readonly fetch: typeof globalThis.fetch
  /** Documents per listing page; the server caps it at 1000. Default 500. */
  readonly pageSize?: number | undefined
}

/**
 * A topic hydrated at one snapshot: resubscribing with `resume_after = watermark` and applying by version yields exactly
 * the read model (protocol.md §6 snapshot rule).
 *
 * @since 0.1.0
 */
export interface Snapshot {
  readonly documents: ReadonlyArray<Document>
  readonly watermark: number
  readonly epoch: string | null
}

/**
 * Most doc keys of one `documents:batchGet` (protocol.md §6).
 *
 * @since 0.1.0
 */
export const maxBatchGetKeys = 1000

const statusCodes: Record<number, string> = {
  400: "bad_subscription",
  401: "unauthorized",
  403: "forbidden_topic",
  404: "not_found",
  413: "payload_too_large",
  429: "rate_limited",
  503: "internal"
}

const isRecord = (u: unknown): u is { readonly [key: string]: unknown } =>
  typeof u === "object" && u !== null && !Array.isArray(u)

const topicPath = (baseUrl: string, topic: string) =>
  `${baseUrl.replace(/\/+$/, "")}/sync/v1/topics/${encodeURIComponent(topic)}/documents`

const retryAfterOf = (response: Response, body: unknown): number | undefined => {
  if (isRecord(body) && typeof body["retry_after_ms"] === "number") return body["retry_after_ms"]
  const header = response.headers.get("retry-after")
  const seconds = header === null ? NaN : Number(header)
  return Number.isFinite(seconds) ? seconds * 1000 : undefined
}

interface Answer {
  readonly status: number
  readonly body: unknown
}

const call = (http: HttpOptions, topic: string, url: string, init: { method: string; body?: string }) =>
  Micro.gen(function*() {
    const token = yield* Micro.mapError(http.token, (cause) =>
      new HydrationFailed({
        topic,
        code: "unauthorized",
        status: undefined,
        detail: `no token: ${String(cause)}`,
        retryAfterMs: undefined
      }))
    const failed = (code: string, status: number | undefined, detail: string, retryAfterMs?: number) =>
      new HydrationFailed({ topic, code, status, detail, retryAfterMs })
    const response = yield* Micro.tryPromise({
      try: (signal) =>
        http.fetch(url, {
          method: init.method,
          signal,
          headers: {
            authorization: `Bearer ${token}`,
            accept: "application/json",
            ...(init.body === undefined ? {} : { "content-type": "application/json" })
          },
          ...(init.body === undefined ? {} : { body: init.body })
        }),
      catch: (cause) => failed("network", undefined, String(cause))
    })
    const text = yield* Micro.tryPromise({
      try: () => response.text(),
      catch: (cause) => failed("network", response.status, String(cause))
    })
    let body: unknown = undefined
    try {
      body = text === "" ? undefined : JSON.parse(text)
    } catch {
      if (response.ok) return yield* Micro.fail(failed("bad_response", response.status, "not JSON"))
    }
    if (!response.ok) {
      const code = isRecord(body) && typeof body["code"] === "string"
        ? body["code"]
        : statusCodes[response.status] ?? "internal"
      const detail = isRecord(body) && typeof body["message"] === "string" ? body["message"] : text.slice(0, 200)
      return yield* Micro.fail(failed(code, response.status, detail, retryAfterOf(response, body)))
    }
    return { status: response.status, body } satisfies Answer
  })

interface WireDocument {
  readonly document: Document
  readonly deleted: boolean
  readonly hydrationRequired: boolean
}

const decodeDocument = (u: unknown): WireDocument | undefined => {
  if (!isRecord(u)) return undefined
  const { doc_key, doc_version, payload_hash, watermark } = u
  if (typeof doc_key !== "string" || typeof doc_version !== "number") return undefined
  return {
    document: {
      docKey: doc_key,
      docVersion: doc_version,
      payload: u["payload"] ?? null,
      payloadHash: typeof payload_hash === "string" ? payload_hash : null,
      watermark: typeof watermark === "number" ? watermark : 0
    },
    deleted: u["deleted"] === true,
    hydrationRequired: u["hydration_required"] === true
  }
}

const decodeDocuments = (topic: string, body: unknown) => {
  const list = isRecord(body) ? body["documents"] : undefined
  const documents = Array.isArray(list) ? list.map(decodeDocument) : undefined
  if (documents === undefined || documents.some((d) => d === undefined)) {
    return Micro.fail(
      new HydrationFailed({
        topic,
        code: "bad_response",
        status: 200,
        detail: "documents[] does not read",
        retryAfterMs: undefined
      })
    )
  }
  return Micro.succeed(documents as Array<WireDocument>)
}

/**
 * One document at its current version; undefined when it does not exist, is deleted, or is not visible to the token
 * (the same 404, I7).
 *
 * @since 0.1.0
 */
export const getDocument = (
  http: HttpOptions,
  topic: string,
  docKey: string
): Micro.Micro<Document | undefined, HydrationFailed> =>
  call(http, topic, `${topicPath(http.baseUrl, topic)}/${encodeURIComponent(docKey)}`, { method: "GET" }).pipe(
    Micro.map((answer) => {
      const decoded = decodeDocument(answer.body)
      return decoded === undefined || decoded.deleted ? undefined : decoded.document
    }),
    Micro.catchIf((error) => error.code === "not_found", () => Micro.succeed(undefined))
  )

/**
 * Current versions of the given documents, fetched in batches of at most 1000. Every asked key gets an answer:
 * `undefined` for a document that does not exist, is deleted, or is not visible, so the caller drops it.
 *
 * @since 0.1.0
 */
export const batchGet = (
  http: HttpOptions,
  topic: string,
  docKeys: ReadonlyArray<string>
): Micro.Micro<Map<string, Document | undefined>, HydrationFailed> =>
  Micro.gen(function*() {
    const keys = [...new Set(docKeys)]
    const found = new Map<string, Document | undefined>(keys.map((key) => [key, undefined]))
    for (let i = 0; i < keys.length; i += maxBatchGetKeys) {
      const chunk = keys.slice(i, i + maxBatchGetKeys)
      const answer = yield* call(http, topic, `${topicPath(http.baseUrl, topic)}:batchGet`, {
        method: "POST",
        body: JSON.stringify({ doc_keys: chunk })
      })
      for (const entry of yield* decodeDocuments(topic, answer.body)) {
        if (!found.has(entry.document.docKey)) continue
        // A document too large for a batch answer is fetched alone.
        const document = entry.hydrationRequired
          ? yield* getDocument(http, topic, entry.document.docKey)
          : entry.deleted
          ? undefined
          : entry.document
        found.set(entry.document.docKey, document)
      }
    }
    return found
  })

/**
 * Every document of the topic that the filter lets in, at one snapshot watermark.
 *
 * A prefix filter (or none) pages through the listing, whose every page reports the same `snapshot_watermark` (SPEC
 * §6). The listing takes no list of keys, so a `docKeys` filter asks for its documents with `batchGet` instead, and
 * resumes from the newest watermark among them (every change to those documents up to the read is at or below it)
 * or the topic's retention floor when that is higher (nothing below the floor can be replayed, and nothing between the
 * two concerns these documents).
 *
 * @since 0.1.0
 */
export const hydrateTopic = (
  http: HttpOptions,
  topic: string,
  filter: DocumentFilter | undefined,
  retentionFloor: number
): Micro.Micro<Snapshot, HydrationFailed> =>
  Micro.gen(function*() {
    if (filter !== undefined && "docKeys" in filter) {
      const found = yield* batchGet(http, topic, filter.docKeys)
      const documents = [...found.values()].filter((d): d is Document => d !== undefined)
      const newest = documents.reduce((max, d) => Math.max(max, d.watermark), 0)
      return { documents, watermark: Math.max(newest, retentionFloor), epoch: null }
    }
    const prefix = filter === undefined ? undefined : filter.docKeyPrefix
    // A journal reset between two pages makes the server refuse the listing's cursor (`stale_cursor`, protocol.md §6):
    // the pages read so far belong to the old epoch, so the listing starts over, a few times at most.
    for (let restarts = 0;; restarts++) {
      const listed = yield* listTopic(http, topic, filter, prefix).pipe(
        Micro.map((snapshot): Snapshot | undefined => snapshot),
        Micro.catchIf(
          (error) => error.code === "stale_cursor" && restarts < maxListingRestarts,
          () => Micro.succeed(undefined)
        )
      )
      if (listed !== undefined) return listed
    }
  })

/** Times a listing starts over after its cursor went stale between pages. */
const maxListingRestarts = 3

const listTopic = (
  http: HttpOptions,
  topic: string,
  filter: DocumentFilter | undefined,
  prefix: string | undefined
): Micro.Micro<Snapshot, HydrationFailed> =>
  Micro.gen(function*() {
    const documents: Array<Document> = []
    let cursor: string | undefined
    let snapshot: { watermark: number; epoch: string | null } | undefined
    do {
      const query = new URLSearchParams({ limit: String(http.pageSize ?? 500) })
      if (cursor !== undefined) query.set("cursor", cursor)
      if (prefix !== undefined) query.set("doc_key_prefix", prefix)
      const answer = yield* call(http, topic, `${topicPath(http.baseUrl, topic)}?${query}`, { method: "GET" })
      const body = isRecord(answer.body) ? answer.body : {}
      const watermark = body["snapshot_watermark"]
      if (typeof watermark !== "number") {
        return yield* Micro.fail(
          new HydrationFailed({
            topic,
            code: "bad_response",
            status: answer.status,
            detail: "no snapshot_watermark",
            retryAfterMs: undefined
          })
        )
      }
      const epoch = body["epoch"]
      snapshot ??= { watermark, epoch: typeof epoch === "string" ? epoch : epoch == null ? null : String(epoch) }
      for (const entry of yield* decodeDocuments(topic, body)) {
        if (entry.deleted || !matchesFilter(filter, entry.document.docKey)) continue
        if (!entry.hydrationRequired) {
          documents.push(entry.document)
          continue
        }
        const fetched = yield* getDocument(http, topic, entry.document.docKey)
        if (fetched !== undefined) documents.push(fetched)
      }
      const next = body["next_cursor"]
      cursor = typeof next === "string" && next !== "" ? next : undefined
    } while (cursor !== undefined)
    return { documents, watermark: snapshot.watermark, epoch: snapshot.epoch }
  })
