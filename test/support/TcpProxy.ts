/**
 * A loopback TCP proxy for the client tests: a fixed port in front of a server that may be restarted on another port,
 * a way to drop every connection at once, and the time of each connection it accepts (to measure reconnect spread
 * from outside the clients).
 */
import { Effect } from "effect"
import { createConnection, createServer, type Socket } from "node:net"

export interface TcpProxy {
  readonly port: number
  readonly url: string
  /** Where connections go from now on. */
  readonly retarget: (port: number) => void
  /** Destroys every open connection, both sides. */
  readonly dropAll: () => void
  /** Stops forwarding on every open connection, which stays open: a dead network path that no side notices. */
  readonly stallAll: () => void
  /**
   * `stallAll`, and new connections are accepted but never forwarded: the target is unreachable without anyone
   * refusing a connection.
   */
  readonly blackhole: () => void
  /** Ends `blackhole`: drops every connection, and new ones are forwarded again. */
  readonly restore: () => void
  /** `performance.now()` of every accepted connection, in order. */
  readonly connectedAt: Array<number>
}

export const startProxy = (targetPort: number) =>
  Effect.acquireRelease(
    Effect.async<{ proxy: TcpProxy; close: () => Promise<void> }>((resume) => {
      let target = targetPort
      let unreachable = false
      const open = new Set<Socket>()
      const pairs = new Set<readonly [Socket, Socket]>()
      const connectedAt: Array<number> = []
      const dropAll = () => {
        for (const socket of open) socket.destroy()
        open.clear()
      }
      const stallAll = () => {
        for (const [client, upstream] of pairs) {
          client.unpipe(upstream)
          upstream.unpipe(client)
          client.pause()
          upstream.pause()
        }
      }
      const server = createServer((client) => {
        connectedAt.push(performance.now())
        if (unreachable) {
          open.add(client)
          client.pause()
          client.on("error", () => client.destroy())
          return
        }
        const upstream = createConnection({ host: "127.0.0.1", port: target })
        open.add(client)
        open.add(upstream)
        client.pipe(upstream)
        upstream.pipe(client)
        const pair = [client, upstream] as const
        pairs.add(pair)
        const end = () => {
          pairs.delete(pair)
          client.destroy()
          upstream.destroy()
          open.delete(client)
          open.delete(upstream)
        }
        client.on("error", end).on("close", end)
        upstream.on("error", end).on("close", end)
      })
      server.listen(0, "127.0.0.1", () => {
        const address = server.address()
        const port = typeof address === "object" && address !== null ? address.port : 0
        resume(Effect.succeed({
          proxy: {
            port,
            url: `http://127.0.0.1:${port}`,
            retarget: (next) => void (target = next),
            dropAll,
            stallAll,
            blackhole: () => {
              unreachable = true
              stallAll()
            },
            restore: () => {
              unreachable = false
              dropAll()
            },
            connectedAt
          },
          close: () =>
            new Promise<void>((done) => {
              for (const socket of open) socket.destroy()
              server.close(() => done())
            })
        }))
      })
    }),
    ({ close }) => Effect.promise(close)
  ).pipe(Effect.map(({ proxy }) => proxy))
