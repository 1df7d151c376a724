import * as AuthJose from "../src/auth/AuthJose.js"
import { orgId, topic } from "./workload.js"

const kid = "bench"
const secret = "bench-secret-bench-secret-bench-secret"

/** The `KHALA_AUTH_HS256_KEYS` value that makes `khala serve` accept `benchToken`. */
export const authKeys = `${kid}:${secret}`

/** A token for the bench topic, signed as the runtime composing Khala would sign it. */
export const benchToken = AuthJose.make([{ kid, secret: new TextEncoder().encode(secret) }])
  .sign({ subject: "bench", orgId, scopes: [topic], ttlSeconds: 3600 })
