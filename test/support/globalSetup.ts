import { execFileSync } from "node:child_process"

/** Tests run the command line from dist/, so build it first (incremental: quick when nothing changed). */
export default function setup() {
  execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.build.json"], { stdio: "inherit" })
}
