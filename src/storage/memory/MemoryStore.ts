import { Chunk, Context, Effect, FiberRef, HashMap, Layer, Option, Ref } from "effect"
import type { Document } from "../../services/Documents.js"
import type { JournalRow } from "../../services/Journal.js"
import { StorageError } from "../../services/StorageError.js"
import type { TopicRegistration } from "../../services/Topic.js"

/**
 * The payload size of each journal row, as the Postgres table keeps it beside the row. Beside the rows rather than in
 * them, so that reads hand out the stored rows themselves, without a copy each.
 */
export const payloadBytesOf = new WeakMap<JournalRow, number>()

/**
 * One topic of the memory store: `events` holds the rows of watermarks `retentionFloor + 1 .. head` in order, every
 * one of them unless rows were erased (`eraseRows`, standing in for a manual delete in Postgres).
 */
export interface MemoryTopic {
  readonly registration: TopicRegistration
  readonly head: number
  readonly retentionFloor: number
  readonly epoch: string
  readonly events: Chunk.Chunk<JournalRow>
}

/** The whole memory database: persistent structures, so a transaction's draft is a cheap copy. */
export interface MemoryState {
  readonly topics: HashMap.HashMap<string, MemoryTopic>
  readonly documents: HashMap.HashMap<string, Document>
  /** Outbox cursors by `outboxCursorId(sink, topic)`: the watermark delivered through. */
  readonly outboxCursors: HashMap.HashMap<string, number>
}

export const outboxCursorId = (sink: string, topic: string) => `${sink}\u0000${topic}`

/** Documents are keyed per org (I7): the same key in two orgs is two documents. */
export const documentId = (topic: string, orgId: string, docKey: string) => `${topic}\u0000${orgId}\u0000${docKey}`

const emptyState: MemoryState = { topics: HashMap.empty(), documents: HashMap.empty(), outboxCursors: HashMap.empty() }

/**
 * The memory twin of Khala's Postgres schema. Writers run one at a time (Postgres serializes them per topic; one
 * lock for the whole store is stricter and observably the same), readers see committed state only, and a
 * transaction works on a draft that is committed whole or dropped, so aborts leave no trace, as in Postgres.
 */
export class MemoryStore extends Context.Tag("khala/MemoryStore")<MemoryStore, {
  /** The committed state, or inside a transaction its draft (a transaction reads its own writes). */
  readonly read: Effect.Effect<MemoryState, StorageError>
  /**
   * Applies `f` atomically: to the enclosing transaction's draft when there is one, else as its own transaction.
   * A failure of `f` writes nothing.
   */
  readonly write: <A, E>(f: (state: MemoryState) => Effect.Effect<readonly [A, MemoryState], E>) => Effect.Effect<
    A,
    E | StorageError
  >
  /** Runs `effect` as one transaction: its writes commit together if it succeeds and vanish if it fails. */
  readonly withTransaction: <A, E, R>(effect: Effect.Effect<A, E, R>) => Effect.Effect<A, E, R>
  /** Whether the current fiber runs inside a transaction of this store. */
  readonly inTransaction: Effect.Effect<boolean>
  /** Failure injection: the next `count` writes fail with a `StorageError` and write nothing. */
  readonly failNextWrites: (count: number) => Effect.Effect<void>
  /** Failure injection: the next `count` reads fail with a `StorageError`, as while the database is down. */
  readonly failNextReads: (count: number) => Effect.Effect<void>
  /**
   * Failure injection: deletes the journal rows of `topic` that `erase` selects, leaving a hole in the journal, as an
   * operator's `delete` of one tenant's rows would in Postgres.
   */
  readonly eraseRows: (topic: string, erase: (row: JournalRow) => boolean) => Effect.Effect<void>
}>() {}

export const makeMemoryStore = Effect.gen(function*() {
  const committed = yield* Ref.make(emptyState)
  const draft = yield* FiberRef.make<Option.Option<Ref.Ref<MemoryState>>>(Option.none())
  const writer = yield* Effect.makeSemaphore(1)
  const draftWriter = yield* Effect.makeSemaphore(1)
  const injectedFailures = yield* Ref.make(0)
  const injectedReadFailures = yield* Ref.make(0)

  const injected = (failures: Ref.Ref<number>) =>
    Ref.modify(failures, (n) => n > 0 ? [true, n - 1] : [false, 0]).pipe(
      Effect.flatMap((fail) =>
        fail ? Effect.fail(new StorageError({ message: "injected storage failure" })) : Effect.void
      )
    )
  const takeInjectedFailure = injected(injectedFailures)

  const applyTo = <A, E>(
    ref: Ref.Ref<MemoryState>,
    f: (state: MemoryState) => Effect.Effect<readonly [A, MemoryState], E>
  ) =>
    Effect.flatMap(Ref.get(ref), f).pipe(
      Effect.flatMap(([result, next]) => Effect.as(Ref.set(ref, next), result))
    )

  const write = <A, E>(f: (state: MemoryState) => Effect.Effect<readonly [A, MemoryState], E>) =>
    Effect.zipRight(
      takeInjectedFailure,
      Effect.flatMap(FiberRef.get(draft), (current) =>
        Option.match(current, {
          // fibers of one transaction may write concurrently: one at a time, as statements on one connection
          onSome: (ref) => draftWriter.withPermits(1)(applyTo(ref, f)),
          onNone: () => writer.withPermits(1)(applyTo(committed, f))
        }))
    )

  const withTransaction = <A, E, R>(effect: Effect.Effect<A, E, R>): Effect.Effect<A, E, R> =>
    Effect.flatMap(FiberRef.get(draft), (current) =>
      Option.isSome(current)
        // a nested transaction is a savepoint, as with SqlClient.withTransaction: its failure undoes its writes only
        ? Effect.flatMap(Ref.get(current.value), (savepoint) =>
          Effect.onError(effect, () => Ref.set(current.value, savepoint)))
        : writer.withPermits(1)(
          Effect.gen(function*() {
            const ref = yield* Ref.make(yield* Ref.get(committed))
            const result = yield* Effect.locally(effect, draft, Option.some(ref))
            yield* Ref.set(committed, yield* Ref.get(ref))
            return result
          })
        ))

  return MemoryStore.of({
    read: Effect.zipRight(
      injected(injectedReadFailures),
      Effect.flatMap(FiberRef.get(draft), (current) => Ref.get(Option.getOrElse(current, () => committed)))
    ),
    write,
    withTransaction,
    inTransaction: Effect.map(FiberRef.get(draft), Option.isSome),
    failNextWrites: (count) => Ref.set(injectedFailures, count),
    failNextReads: (count) => Ref.set(injectedReadFailures, count),
    eraseRows: (topic, erase) =>
      writer.withPermits(1)(Ref.update(committed, (state) => ({
        ...state,
        topics: HashMap.modify(state.topics, topic, (t) => ({
          ...t,
          events: Chunk.filter(t.events, (row) => !erase(row))
        }))
      })))
  })
})

export const layer = Layer.scoped(MemoryStore, makeMemoryStore)
