import { readFileSync } from "node:fs"

/** One payload-hash vector: a document, its canonical JSON and its sha256, which every implementation reproduces. */
export interface HashVector {
  readonly name: string
  readonly payload: unknown
  readonly canonical_json: string
  readonly sha256: string
}

/** The payload-hash vectors the project keeps in `test/fixtures`. */
export const hashVectors: ReadonlyArray<HashVector> = JSON.parse(
  readFileSync(new URL("../fixtures/payload_hash_vectors.json", import.meta.url), "utf8")
).vectors
