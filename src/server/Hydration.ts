/**
 * Hydration over HTTP (protocol.md §6): a topic's documents listed by pages consistent with one snapshot watermark,
 * one document by key (with an ETag), and a batch of documents by keys. Every request carries the socket's token as
 * `Authorization: Bearer`, and sees only its org's documents of topics its scopes allow (I7): another org's
 * document and a missing one are the same 404.
 */
import { HttpRouter, HttpServerRequest, HttpServerResponse } from "@effect/platform"
import { Effect, Either, Option, Schema } from "effect"
import type { Catalog, TopicInfo } from "../protocol/TopicCatalog.js"
import { TopicCatalog } from "../protocol/TopicCatalog.js"
import { defaultMaxPayloadBytes } from "../protocol/UpdateBatch.js"
import type { Document, ListedDocument, ListOptions } from "../services/Documents.js"
import { Documents } from "../services/Documents.js"
import type { Revocations } from "../services/Revocations.js"
import type { Principal, TokenVerifier } from "../services/TokenVerifier.js"
import * as Authorize from "./Authorize.js"
import { ListingReadahead } from "./ListingReadahead.js"
import { ServerConfig } from "./ServerConfig.js"
import * as TopicAccess from "./TopicAccess.js"

/** How hydration answers: the server's settings, and the per-document limit of the wire. */
interface HydrationSettings {
  readonly corsOrigins: ReadonlyArray<string> | "*"
  readonly maxPageBytes: number
  readonly maxPayloadBytes: number
}

/** `limit` of a listing when none is given, and its most. */
export const defaultLimit = 200
export const maxLimit = 1000
/** Most keys of one batch request. */
export const maxBatchKeys = 1000
/** Most bytes of a batch request's body. */
const maxBodyBytes = 1024 * 1024

/** A request refused, with its status and the wire's error code (protocol.md §9). */
class Refused extends Schema.TaggedError<Refused>()("Refused", {
  status: Schema.Number,
  code: Schema.String,
  message: Schema.String,
  extra: Schema.optional(Schema.Record({ key: Schema.String, value: Schema.Unknown }))
}) {}

const refused = (status: number, code: string, message: string, extra?: Record<string, unknown>) =>
  new Refused({ status, code, message, ...(extra === undefined ? {} : { extra }) })

/** The document as hydration returns it. */
const DocumentJson = Schema.Struct({
  doc_key: Schema.String,
  doc_version: Schema.Number,
  payload: Schema.Unknown,
  payload_hash: Schema.NullOr(Schema.String),
  watermark: Schema.Number,
  deleted: Schema.Boolean,
  hydration_required: Schema.Boolean
})

const documentJson = (document: Document): typeof DocumentJson.Type => ({
  doc_key: document.docKey,
  doc_version: document.docVersion,
  payload: document.payload === undefined ? null : document.payload,
  payload_hash: document.payloadHash,
  watermark: document.watermark,
  deleted: document.deleted,
  hydration_required: document.payload === undefined && !document.deleted
})

/**
 * A listing's answer: `envelope` (a JSON object) with its `documents`, each as the storage rendered it (the
 * `DocumentJson` shape, `listedDocumentJson`), joined once and encoded once.
 */
const listingBody = (envelope: string, documents: ReadonlyArray<ListedDocument>): Uint8Array => {
  const parts = new Array<string>(documents.length + 2)
  // the envelope without its closing brace, then the documents as its last member
  parts[0] = `${envelope.slice(0, -1)},"documents":[`
  for (let i = 0; i < documents.length; i++) parts[i + 1] = i === 0 ? documents[i]!.json : `,${documents[i]!.json}`
  parts[documents.length + 1] = "]}"
  return Buffer.from(parts.join(""))
}

/**
 * The listing's cursor, opaque to clients: the snapshot watermark every page reports, the topic's epoch then, the
 * last key listed and the prefix of the listing.
 */
const Cursor = Schema.Struct({
  w: Schema.NonNegativeInt,
  e: Schema.String,
  k: Schema.String,
  p: Schema.optional(Schema.String)
})
const CursorFromString = Schema.compose(Schema.StringFromBase64Url, Schema.parseJson(Cursor))
const decodeCursor = Schema.decodeUnknownEither(CursorFromString)
const encodeCursor = Schema.encodeSync(CursorFromString)

const ListQuery = Schema.Struct({
  limit: Schema.optional(Schema.NumberFromString.pipe(Schema.int(), Schema.positive())),
  cursor: Schema.optional(Schema.String),
  doc_key_prefix: Schema.optional(Schema.String.pipe(Schema.maxLength(1024)))
})
const decodeListQuery = Schema.decodeUnknownEither(ListQuery, { onExcessProperty: "ignore" })

const BatchGetBody = Schema.Struct({
  doc_keys: Schema.Array(Schema.String.pipe(Schema.minLength(1), Schema.maxLength(1024))).pipe(
    Schema.maxItems(maxBatchKeys)
  )
})
const decodeBatchGet = Schema.decodeUnknownEither(Schema.parseJson(BatchGetBody))

/**
 * Postgres text never holds U+0000, so a key or prefix with one names no document; sent to the database it would
 * fail the query, and a client's odd key must not read as the database failing (503).
 */
const storable = (text: string) => !text.includes("\u0000")

const bearer = (request: HttpServerRequest.HttpServerRequest) => {
  const header = request.headers["authorization"] ?? ""
  const match = /^Bearer\s+(\S+)$/i.exec(header)
  return match === null ? undefined : match[1]
}

/** The principal of the request's token, or 401. */
const authorize = (request: HttpServerRequest.HttpServerRequest) =>
  Effect.gen(function*() {
    const token = bearer(request)
    if (token === undefined) return yield* refused(401, "unauthorized", "an Authorization: Bearer token is required")
    return yield* Effect.mapError(
      Authorize.principal(token),
      (error) => refused(401, "unauthorized", error.message, { reason: error.reason })
    )
  })

/** The topic named in the path, if the catalog knows it and the token's scopes allow it; else 403 (I7). */
const topicFor = (catalog: Catalog, principal: Principal, name: string): Effect.Effect<TopicInfo, Refused> => {
  const topic = catalog.get(name)
  return Option.isSome(topic) && TopicAccess.allowedTopics(catalog, principal.scopes).includes(topic.value.wireName)
    ? Effect.succeed(topic.value)
    : Effect.fail(refused(403, "forbidden_topic", `not allowed: ${name}`, { forbidden_topics: [name] }))
}

const storageFailed = Effect.mapError((error: { readonly _tag: string; readonly message: string }) =>
  error._tag === "UnknownTopic"
    ? refused(403, "forbidden_topic", error.message)
    : refused(503, "internal", "the database did not answer; try again", { retry_after_ms: 1000 })
)

const list = (topic: TopicInfo, principal: Principal, search: URLSearchParams, settings: HydrationSettings) =>
  Effect.gen(function*() {
    const query = decodeListQuery(Object.fromEntries(search))
    if (Either.isLeft(query)) return yield* refused(400, "bad_subscription", "limit must be a positive integer")
    const limit = Math.min(query.right.limit ?? defaultLimit, maxLimit)
    let cursor: typeof Cursor.Type | undefined
    if (query.right.cursor !== undefined) {
      const decoded = decodeCursor(query.right.cursor)
      if (Either.isLeft(decoded)) return yield* refused(400, "bad_subscription", "cursor is not one this server made")
      cursor = decoded.right
      // a cursor is made by this server from stored keys: one holding what no key holds was not
      if (!storable(cursor.k) || (cursor.p !== undefined && !storable(cursor.p))) {
        return yield* refused(400, "bad_subscription", "cursor is not one this server made")
      }
    }
    const prefix = cursor?.p ?? query.right.doc_key_prefix
    if (prefix !== undefined && !storable(prefix)) {
      return yield* refused(400, "bad_subscription", "doc_key_prefix cannot contain U+0000")
    }
    if (cursor !== undefined && query.right.doc_key_prefix !== undefined && query.right.doc_key_prefix !== cursor.p) {
      return yield* refused(400, "bad_subscription", "doc_key_prefix differs from the listing's")
    }
    const options: ListOptions = {
      topic: topic.wireName,
      orgId: principal.orgId,
      docKeyPrefix: prefix,
      afterKey: cursor?.k,
      limit,
      maxBytes: settings.maxPageBytes,
      maxPayloadBytes: settings.maxPayloadBytes
    }
    const readahead = yield* ListingReadahead
    // a later page may have been read ahead, after the first; a first page never is, and is read now
    const page = yield* readahead.page(options).pipe(storageFailed)
    // A reset between pages renumbers the journal: the listing must start over (protocol.md §7).
    if (cursor !== undefined && cursor.e !== page.epoch) {
      return yield* refused(400, "stale_cursor", "the topic's journal was reset while listing; list again", {
        reason: "epoch_changed",
        full_resync_required: true
      })
    }
    if (Option.isSome(page.nextKey)) yield* readahead.readAhead({ ...options, afterKey: page.nextKey.value })
    // Every page reports the first page's snapshot: documents listed later are at their version then or newer,
    // and resuming from it replays everything since (protocol.md §6).
    const snapshot = cursor?.w ?? page.watermark
    const envelope = JSON.stringify({
      topic: topic.wireName,
      epoch: page.epoch,
      snapshot_watermark: snapshot,
      next_cursor: Option.match(page.nextKey, {
        onNone: () => null,
        onSome: (k) => encodeCursor({ w: snapshot, e: page.epoch, k, ...(prefix === undefined ? {} : { p: prefix }) })
      })
    })
    return HttpServerResponse.uint8Array(listingBody(envelope, page.documents), { contentType: "application/json" })
  })

/** Whether an `If-None-Match` header matches the entity tag. */
const matches = (ifNoneMatch: string | undefined, etag: string) =>
  ifNoneMatch !== undefined &&
  ifNoneMatch.split(",").map((tag) => tag.trim().replace(/^W\//, "")).some((tag) => tag === "*" || tag === etag)

const getOne = (topic: TopicInfo, principal: Principal, docKey: string, ifNoneMatch: string | undefined) =>
  Effect.gen(function*() {
    if (!storable(docKey)) return yield* refused(404, "not_found", "no such document")
    const found = yield* Effect.flatMap(
      Documents,
      (documents) => documents.get(topic.wireName, principal.orgId, docKey)
    ).pipe(storageFailed)
    // missing, deleted and another org's are all the same answer: existence never leaks (I7)
    if (Option.isNone(found) || found.value.deleted) {
      return yield* refused(404, "not_found", "no such document")
    }
    const etag = `"${found.value.payloadHash}"`
    if (matches(ifNoneMatch, etag)) return HttpServerResponse.empty({ status: 304, headers: { etag } })
    return yield* HttpServerResponse.json(documentJson(found.value), { headers: { etag } })
  })

const batchGet = (topic: TopicInfo, principal: Principal, body: string, settings: HydrationSettings) =>
  Effect.gen(function*() {
    const decoded = decodeBatchGet(body)
    if (Either.isLeft(decoded)) {
      return yield* refused(
        400,
        "bad_subscription",
        `the body must be {"doc_keys": [...]} with at most ${maxBatchKeys}`
      )
    }
    const found = yield* Effect.flatMap(
      Documents,
      // keys no document can have are left out: the answer lists those that exist
      (documents) => documents.getMany(topic.wireName, principal.orgId, decoded.right.doc_keys.filter(storable))
    ).pipe(storageFailed)
    // bounded like a page: documents past the budget, or over the per-document limit, are to be fetched alone
    let bytes = 0
    const documents = found.filter((d) => !d.deleted).map((d) => {
      const inline = d.payloadBytes <= settings.maxPayloadBytes && bytes < settings.maxPageBytes
      if (inline) bytes += d.payloadBytes
      return documentJson(inline ? d : { ...d, payload: undefined })
    })
    return { topic: topic.wireName, documents }
  })

/** `/sync/v1/topics/{topic}/documents`, `…/documents/{doc_key}` (URL-encoded) and `…/documents:batchGet`. */
const parsePath = (pathname: string) => {
  const match = /^\/sync\/v1\/topics\/([^/]+)\/documents(?:(:batchGet)|\/(.+))?$/.exec(pathname)
  if (match === null) return undefined
  try {
    return {
      topic: decodeURIComponent(match[1]!),
      batchGet: match[2] !== undefined,
      docKey: match[3] === undefined ? undefined : decodeURIComponent(match[3])
    }
  } catch {
    return undefined
  }
}

const errorResponse = (error: Refused) =>
  HttpServerResponse.unsafeJson({ code: error.code, message: error.message, ...error.extra }, {
    status: error.status,
    headers: error.status === 503
      ? { "retry-after": "1" }
      : error.status === 401
      ? { "www-authenticate": "Bearer" }
      : {}
  })

const corsHeaders = (settings: HydrationSettings, origin: string | undefined): Record<string, string> => {
  if (origin === undefined) return {}
  const allowed = settings.corsOrigins === "*" || settings.corsOrigins.includes(origin)
  return allowed
    ? { "access-control-allow-origin": origin, "access-control-expose-headers": "etag", vary: "origin" }
    : {}
}

/** The hydration routes, answering browsers of the configured origins (CORS, preflight included). */
export const router: HttpRouter.HttpRouter<
  never,
  ServerConfig | TokenVerifier | Revocations | TopicCatalog | Documents | ListingReadahead
> = (() => {
  const handler = Effect.gen(function*() {
    const config = yield* ServerConfig
    const settings: HydrationSettings = {
      corsOrigins: config.corsOrigins,
      maxPageBytes: config.hydrationPageBytes,
      maxPayloadBytes: defaultMaxPayloadBytes
    }
    const request = yield* HttpServerRequest.HttpServerRequest
    const cors = corsHeaders(settings, request.headers["origin"])
    if (request.method === "OPTIONS") {
      return HttpServerResponse.empty({
        status: 204,
        headers: Object.keys(cors).length === 0 ? {} : {
          ...cors,
          "access-control-allow-methods": "GET, POST",
          "access-control-allow-headers": "authorization, content-type, if-none-match",
          "access-control-max-age": "600"
        }
      })
    }
    const url = new URL(request.url, "http://khala")
    const response = yield* Effect.gen(function*() {
      const path = parsePath(url.pathname)
      if (path === undefined) return yield* refused(404, "not_found", "no such resource")
      const principal = yield* authorize(request)
      const topic = yield* topicFor(yield* TopicCatalog, principal, path.topic)
      if (path.batchGet) {
        if (request.method !== "POST") return yield* refused(405, "bad_subscription", "documents:batchGet is a POST")
        const length = Number(request.headers["content-length"] ?? "0")
        if (length > maxBodyBytes) return yield* refused(413, "payload_too_large", `at most ${maxBodyBytes} bytes`)
        const body = yield* request.text.pipe(
          Effect.mapError(() => refused(400, "bad_subscription", "unreadable body"))
        )
        if (body.length > maxBodyBytes) return yield* refused(413, "payload_too_large", `at most ${maxBodyBytes} bytes`)
        return yield* HttpServerResponse.json(yield* batchGet(topic, principal, body, settings))
      }
      if (request.method !== "GET") return yield* refused(405, "bad_subscription", "only GET here")
      if (path.docKey !== undefined) {
        return yield* getOne(topic, principal, path.docKey, request.headers["if-none-match"])
      }
      return yield* list(topic, principal, url.searchParams, settings)
    }).pipe(
      Effect.catchTag("Refused", (error) => Effect.succeed(errorResponse(error))),
      Effect.catchTag(
        "HttpBodyError",
        () => Effect.succeed(errorResponse(refused(503, "internal", "could not encode the answer")))
      )
    )
    return Object.keys(cors).length === 0 ? response : HttpServerResponse.setHeaders(response, cors)
  })
  return HttpRouter.empty.pipe(HttpRouter.all("/sync/v1/*", handler))
})()
