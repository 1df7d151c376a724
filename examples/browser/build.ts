/**
 * Builds the example page's script (`dist/app.js`, the client bundled with esbuild) and, with `--serve PORT`, serves the
 * folder on loopback:
 *   node --import tsx examples/browser/build.ts --serve 8080
 * then open http://127.0.0.1:8080/#server=http://127.0.0.1:4000&token=<a token from `khala token`>.
 */
import { build } from "esbuild"
import { readFile } from "node:fs/promises"
import { createServer, type IncomingMessage, type ServerResponse } from "node:http"
import { extname, join, normalize } from "node:path"
import { fileURLToPath } from "node:url"
import { parseArgs } from "node:util"

const here = fileURLToPath(new URL(".", import.meta.url))

/** Bundles the page script; returns the bundle's size in bytes. */
export const buildApp = async (): Promise<number> => {
  const result = await build({
    entryPoints: [join(here, "app.ts")],
    outfile: join(here, "dist", "app.js"),
    bundle: true,
    minify: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    metafile: true,
    logLevel: "warning"
  })
  return Object.values(result.metafile.outputs).reduce((total, output) => total + output.bytes, 0)
}

const types: Record<string, string> = { ".html": "text/html", ".js": "text/javascript", ".map": "application/json" }

/** Answers a request with a file of this folder (`/` is `index.html`). */
export const serveFile = (request: IncomingMessage, response: ServerResponse) => {
  const path = normalize(new URL(request.url ?? "/", "http://example").pathname).replace(/^(\.\.[/\\])+/, "")
  const file = join(here, path === "/" ? "index.html" : path)
  readFile(file).then(
    (content) => response.writeHead(200, { "content-type": types[extname(file)] ?? "text/plain" }).end(content),
    () => response.writeHead(404).end("not found")
  )
}

const serve = (port: number) =>
  createServer(serveFile).listen(port, "127.0.0.1", () => console.log(`serving http://127.0.0.1:${port}/`))

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const { values } = parseArgs({ options: { serve: { type: "string" } } })
  const bytes = await buildApp()
  console.log(`built dist/app.js (${(bytes / 1024).toFixed(1)} KiB minified)`)
  if (values.serve !== undefined) serve(Number(values.serve))
}
