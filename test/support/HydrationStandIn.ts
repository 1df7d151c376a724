/**
 * A stand-in for the server's HTTP hydration (protocol.md §6) until `khala serve` has it: an HTTP server on loopback that
 * answers `/sync/v1/topics/...` from the real server's read model (plain SQL on its database, rows of the token's org
 * only) and forwards every WebSocket upgrade to the real server untouched. The client under test talks to one origin,
 * as it would to a real server; only the hydration answers are the stand-in's.
 *
 * Listings report `snapshot_watermark` = the topic's head when the first page was read (carried in the cursor) and the
 * topic's epoch, and every page reads current rows, which the snapshot rule allows ("at its version at W or newer");
 * tombstones are skipped by listings, answered as `deleted` by batchGet and as 404 alone.
 */
import { Effect } from "effect"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { connect } from "node:net"
import pg from "pg"

export interface StandIn {
  readonly url: string
  /** Every hydration request, as `METHOD path?query`. */
  readonly requests: Array<string>
  /** Answer the next `n` hydration requests with 503 and `Retry-After: 0`. */
  readonly failNext: (n: number) => void
}

const orgOf = (request: IncomingMessage): string | undefined => {
  const token = /^Bearer (.+)$/.exec(request.headers.authorization ?? "")?.[1]
  const claims = token?.split(".")[1]
  if (claims === undefined) return undefined
  return JSON.parse(Buffer.from(claims, "base64url").toString("utf8")).oa_org_id
}

const readBody = (request: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let body = ""
    request.on("data", (chunk) => (body += chunk)).on("end", () => resolve(body))
  })

const json = (response: ServerResponse, status: number, body: unknown) =>
  response.writeHead(status, { "content-type": "application/json" }).end(JSON.stringify(body))

const documentOf = (row: any) => ({
  doc_key: row.doc_key,
  doc_version: Number(row.doc_version),
  payload: row.payload,
  payload_hash: row.payload_hash === null ? null : `sha256:${Buffer.from(row.payload_hash).toString("hex")}`,
  watermark: Number(row.watermark),
  deleted: row.deleted
})

export const startStandIn = (options: { readonly databaseUrl: string; readonly serverPort: number }) =>
  Effect.acquireRelease(
    Effect.promise(async () => {
      const db = new pg.Client({ connectionString: options.databaseUrl })
      await db.connect()
      const requests: Array<string> = []
      let failures = 0
      const columns = "doc_key, doc_version, payload, payload_hash, watermark, deleted"

      const answer = async (request: IncomingMessage, response: ServerResponse) => {
        const url = new URL(request.url ?? "/", "http://stand-in")
        requests.push(`${request.method} ${url.pathname}${url.search}`)
        const org = orgOf(request)
        if (org === undefined) return json(response, 401, { code: "unauthorized", message: "no token" })
        if (failures > 0) {
          failures--
          response.setHeader("retry-after", "0")
          return json(response, 503, { code: "internal", message: "injected failure" })
        }
        const match = /^\/sync\/v1\/topics\/([^/]+)\/documents(?:\/([^/]+)|(:batchGet))?$/.exec(url.pathname)
        if (match === null) return json(response, 404, { code: "not_found", message: "no such route" })
        const topic = decodeURIComponent(match[1]!)
        if (match[3] !== undefined && request.method === "POST") {
          const keys: Array<string> = JSON.parse(await readBody(request)).doc_keys
          const rows = await db.query(
            `select ${columns} from khala.sync_documents where topic = $1 and org_id = $2 and doc_key = any($3)`,
            [topic, org, keys]
          )
          return json(response, 200, { topic, documents: rows.rows.map(documentOf) })
        }
        if (match[2] !== undefined) {
          const rows = await db.query(
            `select ${columns} from khala.sync_documents where topic = $1 and org_id = $2 and doc_key = $3
               and not deleted`,
            [topic, org, decodeURIComponent(match[2])]
          )
          if (rows.rows.length === 0) return json(response, 404, { code: "not_found", message: "no such document" })
          return json(response, 200, documentOf(rows.rows[0]))
        }
        const limit = Math.min(Number(url.searchParams.get("limit") ?? 200), 1000)
        const prefix = url.searchParams.get("doc_key_prefix") ?? ""
        const cursor = url.searchParams.get("cursor")
        const head = await db.query(
          "select next_watermark, epoch from khala.sync_topic_sequences where topic = $1",
          [topic]
        )
        const epoch: string | null = head.rows[0]?.epoch ?? null
        const [snapshot, after] = cursor === null
          ? [Number(head.rows[0]?.next_watermark ?? 0), ""]
          : JSON.parse(Buffer.from(cursor, "base64url").toString("utf8"))
        const rows = await db.query(
          `select ${columns} from khala.sync_documents where topic = $1 and org_id = $2 and doc_key > $3
             and starts_with(doc_key, $4) and not deleted order by doc_key limit $5`,
          [topic, org, after, prefix, limit + 1]
        )
        const page = rows.rows.slice(0, limit)
        const next = rows.rows.length > limit
          ? Buffer.from(JSON.stringify([snapshot, page.at(-1).doc_key])).toString("base64url")
          : null
        return json(response, 200, {
          topic,
          epoch,
          snapshot_watermark: snapshot,
          documents: page.map(documentOf),
          next_cursor: next
        })
      }

      const server = createServer((request, response) => {
        answer(request, response).catch((error) => json(response, 500, { code: "internal", message: String(error) }))
      })
      // Upgrades go to the real server byte for byte: the request head as received, then both directions piped.
      server.on("upgrade", (request: IncomingMessage, socket, head) => {
        const upstream = connect({ host: "127.0.0.1", port: options.serverPort }, () => {
          const lines = [`${request.method} ${request.url} HTTP/1.1`]
          for (let i = 0; i < request.rawHeaders.length; i += 2) {
            lines.push(`${request.rawHeaders[i]}: ${request.rawHeaders[i + 1]}`)
          }
          upstream.write(lines.join("\r\n") + "\r\n\r\n")
          if (head.length > 0) upstream.write(head)
          socket.pipe(upstream)
          upstream.pipe(socket)
        })
        const end = () => {
          socket.destroy()
          upstream.destroy()
        }
        socket.on("error", end).on("close", end)
        upstream.on("error", end).on("close", end)
      })
      await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve))
      const address = server.address()
      const port = typeof address === "object" && address !== null ? address.port : 0
      const standIn: StandIn = {
        url: `http://127.0.0.1:${port}`,
        requests,
        failNext: (n) => void (failures = n)
      }
      return { standIn, server, db }
    }),
    ({ db, server }) =>
      Effect.promise(async () => {
        server.closeAllConnections()
        await new Promise<void>((resolve) => server.close(() => resolve()))
        await db.end()
      })
  ).pipe(Effect.map(({ standIn }) => standIn))
