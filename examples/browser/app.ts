/**
 * A page listing runs live: the Khala client follows the example runtime's `example.runs` (examples/runtime), loads
 * them over HTTP on a first visit, keeps them in IndexedDB (so a reload shows them at once and resumes where it left
 * off) and re-renders on every change.
 *
 * The server and the token come from the page's address: `index.html#server=http://127.0.0.1:4100&token=...`, and
 * optionally `&topic=...` to follow another topic of the same shape.
 */
import { createClient, indexedDbStore } from "khala/client"

interface RunSummary {
  readonly run_id?: string
  readonly status?: string
}

// The page runs in a browser; the project compiles without the DOM library, so the few DOM calls are typed here.
interface Element {
  textContent: string | null
  hidden: boolean
  dataset: Record<string, string>
  replaceChildren(...nodes: Array<Element>): void
  append(...nodes: Array<Element | string>): void
  addEventListener(type: string, listener: (event: { preventDefault(): void }) => void): void
}
interface Page {
  readonly location: { hash: string; reload(): void }
  readonly document: {
    getElementById(id: string): Element
    querySelector(selector: string): Element
    createElement(tag: string): Element
  }
  readonly FormData: new(form: Element) => { get(name: string): unknown }
}
const { document, FormData, location } = globalThis as unknown as Page

const params = new URLSearchParams(location.hash.slice(1))
const server = params.get("server")
const token = params.get("token")
const topic = params.get("topic") ?? "example.runs"

const form = document.getElementById("connect")
if (server === null || token === null) {
  form.hidden = false
  form.addEventListener("submit", (event) => {
    event.preventDefault()
    const data = new FormData(form)
    location.hash = new URLSearchParams({ server: String(data.get("server")), token: String(data.get("token")) })
      .toString()
    location.reload()
  })
} else {
  const client = createClient({
    url: server,
    token: () => token,
    store: indexedDbStore({ name: `khala-example-${topic}` }),
    // A first visit lists the documents over HTTP at a snapshot and subscribes from it (protocol.md §6): fewer bytes
    // than replaying the journal. The server must allow this page's origin (EXAMPLE_CORS_ORIGINS).
    initialLoad: "hydrate"
  })
  const runs = client.subscribe<RunSummary>(topic)

  const status = document.getElementById("status")
  client.state.subscribe(() => {
    const state = client.state.getSnapshot()
    status.textContent = state.status
    status.dataset["status"] = state.status
  })

  const table = document.querySelector("table")
  const body = document.getElementById("runs")
  const empty = document.getElementById("empty")
  const cell = (text: string, className?: string) => {
    const td = document.createElement("td")
    td.textContent = text
    if (className !== undefined) {
      ;(td as unknown as { className: string }).className = className
      td.dataset["value"] = text
    }
    return td
  }
  const render = () => {
    const documents = [...runs.getSnapshot().values()].sort((a, b) => a.docKey.localeCompare(b.docKey))
    table.hidden = documents.length === 0
    empty.hidden = documents.length > 0
    body.replaceChildren(...documents.map((run) => {
      const row = document.createElement("tr")
      row.append(
        cell(run.payload.run_id ?? run.docKey),
        cell(run.payload.status ?? "", "status"),
        cell(String(run.docVersion))
      )
      return row
    }))
  }
  runs.subscribe(render)
  render()
}
