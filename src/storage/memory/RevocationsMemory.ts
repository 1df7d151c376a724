import { Effect, Layer } from "effect"
import * as RevocationSet from "../../engine/RevocationSet.js"
import { Revocations } from "../../services/Revocations.js"

/** Revocations of one process, in memory: what `revoke` records is in force here at once. */
export const make = Effect.map(RevocationSet.make, (set) =>
  Revocations.of({
    revoke: (target, until) => set.apply([{ target, until }]),
    isRevoked: set.isRevoked,
    awaitRevoked: set.awaitRevoked
  }))

export const layerMemory: Layer.Layer<Revocations> = Layer.effect(Revocations, make)
