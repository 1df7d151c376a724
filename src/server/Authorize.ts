/**
 * Who a bearer token speaks for at the edge (protocol.md §8): verified, and not revoked. The socket upgrade and every
 * hydration request ask here; the revocation check reads the node's memory, never the database.
 */
import { Effect } from "effect"
import { Revocations } from "../services/Revocations.js"
import type { Principal } from "../services/TokenVerifier.js"
import { TokenVerifier, Unauthorized } from "../services/TokenVerifier.js"

export const principal = (token: string): Effect.Effect<Principal, Unauthorized, TokenVerifier | Revocations> =>
  Effect.gen(function*() {
    const verified = yield* (yield* TokenVerifier).verify(token)
    if (yield* (yield* Revocations).isRevoked(verified)) {
      return yield* new Unauthorized({ reason: "revoked", message: "token has been revoked" })
    }
    return verified
  })
