import { describe, expect, layer } from "@effect/vitest"
import { Effect, Runtime } from "effect"
import * as fc from "fast-check"
import { Documents } from "../../src/services/Documents.js"
import { Journal } from "../../src/services/Journal.js"
import { Publisher } from "../../src/services/Publisher.js"
import { Sequencer } from "../../src/services/Sequencer.js"
import { providers } from "../support/Providers.js"

interface Change {
  readonly orgId: string
  readonly docKey: string
  readonly docVersion: number
  readonly remove: boolean
  readonly batched: boolean
}

const change = fc.record({
  orgId: fc.constantFrom("org_a", "org_b"),
  docKey: fc.constantFrom("run_1", "run_2", "run_3"),
  docVersion: fc.nat(6),
  remove: fc.boolean(),
  batched: fc.boolean()
})

describe.each(providers)("two orgs sharing document keys (property): $name", (provider) => {
  describe.skipIf(!provider.available)("", () => {
    layer(provider.layer, { timeout: 360_000, excludeTestServices: true })((it) => {
      it.effect("each org's outcomes, documents and journal rows are what its own changes alone make them (I7)", () =>
        Effect.gen(function*() {
          const runtime = yield* Effect.runtime<Publisher | Documents | Journal | Sequencer>()
          let run = 0
          yield* Effect.promise(() =>
            fc.assert(
              fc.asyncProperty(fc.array(change, { minLength: 1, maxLength: 24 }), (changes) =>
                Runtime.runPromise(runtime)(
                  Effect.gen(function*() {
                    const topic = `test.tenancy_${run++}`
                    yield* (yield* Sequencer).register([{ topic, retentionClass: "unspecified" }])
                    const publisher = yield* Publisher
                    // the model: each org's newest version per key, from its own changes only
                    const newest = new Map<string, { version: number; removed: boolean; payload: unknown }>()
                    const appended: Array<Change & { readonly watermark: number }> = []
                    for (const c of changes) {
                      const payload = { org: c.orgId, v: c.docVersion }
                      const key = `${c.orgId}/${c.docKey}`
                      const update = { topic, orgId: c.orgId, docKey: c.docKey, docVersion: c.docVersion }
                      const outcome = c.remove
                        ? yield* publisher.remove(update)
                        : c.batched
                        ? (yield* publisher.publishAll([{ ...update, payload }]))[0]!
                        : yield* publisher.publish({ ...update, payload })
                      const stored = newest.get(key)
                      const expectNewer = stored === undefined || c.docVersion > stored.version
                      expect(outcome._tag).toBe(expectNewer ? "Appended" : "NotNewer")
                      if (expectNewer) {
                        newest.set(key, { version: c.docVersion, removed: c.remove, payload })
                      }
                      if (outcome._tag === "Appended") {
                        appended.push({ ...c, watermark: outcome.watermark })
                      }
                    }
                    const documents = yield* Documents
                    for (const orgId of ["org_a", "org_b"]) {
                      for (const docKey of ["run_1", "run_2", "run_3"]) {
                        const expected = newest.get(`${orgId}/${docKey}`)
                        const [stored] = yield* documents.getMany(topic, orgId, [docKey])
                        if (expected === undefined) {
                          expect(stored).toBeUndefined()
                        } else {
                          expect(stored).toMatchObject({
                            orgId,
                            docVersion: expected.version,
                            deleted: expected.removed
                          })
                          if (!expected.removed) {
                            expect(stored!.payload).toEqual(expected.payload)
                          }
                        }
                      }
                      // the listing holds exactly the org's live documents, each at its own newest version
                      const listed = (yield* documents.list({ topic, orgId, limit: 10 })).documents
                      expect(
                        listed.map((d) =>
                          JSON.parse(d.json)
                        ).map((d) => [d.doc_key, d.doc_version, d.payload])
                      )
                        .toEqual(
                          ["run_1", "run_2", "run_3"].flatMap((docKey) => {
                            const expected = newest.get(`${orgId}/${docKey}`)
                            return expected === undefined || expected.removed
                              ? []
                              : [[docKey, expected.version, expected.payload]]
                          })
                        )
                    }
                    // every appended change is a journal row of its own org, in watermark order
                    const rows = (yield* (yield* Journal).read(topic, 0, 1000)).rows
                    expect(rows.map((r) => [r.watermark, r.orgId, r.docKey, r.docVersion, r.deleted])).toEqual(
                      appended.map((a) => [a.watermark, a.orgId, a.docKey, a.docVersion, a.remove])
                    )
                  }).pipe(Effect.orDie)
                )),
              { numRuns: 40 }
            )
          )
        }))
    })
  })
})
