import { Effect } from "effect"
import type { Socket } from "node:net"
import { connect, createServer } from "node:net"

/** Queries counted by the proxy since it started. */
export interface QueryCounts {
  /** Simple-protocol queries ('Q' messages). */
  readonly simple: number
  /** Extended-protocol queries: each ends with one Sync ('S' message). */
  readonly extended: number
  readonly connections: number
}

// The startup phase has no type byte: int32 length, int32 code. These two codes ask for encryption first and are
// followed by the real startup message.
const sslRequest = 80877103
const gssEncRequest = 80877104

/**
 * Counts the frontend messages of one connection: after the startup message, each is a type byte and an int32
 * length that counts itself and the body. Only headers are read; bodies are skipped as they stream by.
 */
const messageCounter = (count: (type: number) => void) => {
  let startup = true
  const header = Buffer.alloc(8)
  let headerBytes = 0
  let skip = 0
  return (chunk: Buffer) => {
    let i = 0
    while (i < chunk.length) {
      if (skip > 0) {
        const n = Math.min(skip, chunk.length - i)
        skip -= n
        i += n
        continue
      }
      const size = startup ? 8 : 5
      const n = Math.min(size - headerBytes, chunk.length - i)
      chunk.copy(header, headerBytes, i, i + n)
      headerBytes += n
      i += n
      if (headerBytes < size) break
      headerBytes = 0
      if (startup) {
        skip = header.readInt32BE(0) - 8
        const code = header.readInt32BE(4)
        startup = code === sslRequest || code === gssEncRequest
      } else {
        skip = header.readInt32BE(1) - 4
        count(header[0]!)
      }
    }
  }
}

/**
 * A TCP proxy to the Postgres at `target` that counts the queries passing through it, for as long as the current
 * scope. Point a process's DATABASE_URL at its port to count every query that process makes, on all of its
 * connections (its pool and its LISTEN connection alike).
 */
export const countingPgProxy = (target: { readonly host: string; readonly port: number }) =>
  Effect.acquireRelease(
    Effect.promise(() =>
      new Promise<{ port: number; counts: () => QueryCounts; close: () => void }>((resolve, reject) => {
        let simple = 0
        let extended = 0
        let connections = 0
        const sockets = new Set<Socket>()
        const server = createServer((client) => {
          connections++
          const upstream = connect(target.port, target.host)
          for (const socket of [client, upstream]) {
            sockets.add(socket)
            socket.on("close", () => sockets.delete(socket))
            socket.on("error", () => {
              client.destroy()
              upstream.destroy()
            })
          }
          const countMessage = messageCounter((type) => {
            if (type === 0x51) simple++ // 'Q'
            else if (type === 0x53) extended++ // 'S'
          })
          client.on("data", countMessage)
          client.pipe(upstream)
          upstream.pipe(client)
        })
        server.once("error", reject)
        server.listen(0, "127.0.0.1", () => {
          const address = server.address()
          if (typeof address !== "object" || address === null) return reject(new Error("proxy has no port"))
          resolve({
            port: address.port,
            counts: () => ({ simple, extended, connections }),
            close: () => {
              server.close()
              sockets.forEach((socket) => socket.destroy())
            }
          })
        })
      })
    ),
    (proxy) => Effect.sync(() => proxy.close())
  ).pipe(Effect.map(({ counts, port }) => ({ port, counts })))

/** Queries of both protocols. */
export const totalQueries = (counts: QueryCounts) => counts.simple + counts.extended
