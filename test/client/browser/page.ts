/**
 * The page the browser test loads: the bundled client with the IndexedDB store, following run summaries, loading a
 * first visit by hydration over HTTP (cross-origin: the page and the server are on different ports). It reports
 * to the test through `globalThis.khala`: the size at each notification (the first one is what IndexedDB restored),
 * whether the topic is synced, and every update watermark this page load received on the wire.
 */
import { createClient, indexedDbStore, type WebSocketConstructor } from "../../../src/client/index.js"

interface Report {
  status: string
  synced: boolean
  sizes: Array<number>
  wire: Array<number>
  documents: Record<string, unknown>
}

const params = new URLSearchParams((globalThis as unknown as { location: { search: string } }).location.search)
const report: Report = { status: "connecting", synced: false, sizes: [], wire: [], documents: {} }
;(globalThis as unknown as { khala: Report }).khala = report

const PlatformWebSocket = (globalThis as unknown as { WebSocket: WebSocketConstructor }).WebSocket
class RecordingWebSocket extends (PlatformWebSocket as unknown as new(url: string, protocols?: Array<string>) => {
  addEventListener(type: "message", listener: (event: { data: unknown }) => void): void
}) {
  constructor(url: string, protocols?: Array<string>) {
    super(url, protocols)
    this.addEventListener("message", (event) => {
      const frame = JSON.parse(String(event.data))
      if (frame[3] === "sync:update_batch") {
        for (const update of frame[4].updates) report.wire.push(update.watermark)
      }
    })
  }
}

const client = createClient({
  url: params.get("server")!,
  token: () => params.get("token")!,
  store: indexedDbStore({ name: "khala-browser-test" }),
  initialLoad: "hydrate",
  webSocket: RecordingWebSocket as unknown as WebSocketConstructor
})
client.state.subscribe(() => void (report.status = client.state.getSnapshot().status))
const runs = client.subscribe<{ i: number }>("runtime.run_summaries")
runs.subscribe(() => {
  const snapshot = runs.getSnapshot()
  report.sizes.push(snapshot.size)
  report.documents = Object.fromEntries([...snapshot].map(([key, document]) => [key, document.payload]))
})
runs.status.subscribe(() => void (report.synced = runs.status.getSnapshot().synced))
