/**
 * Progress of a long command (a retention run over millions of rows, migrations) on one line of stderr, redrawn in
 * place every half second while stderr is a terminal: what runs, for how long, and what the operation reports it has
 * done. Scripts and logs (not a terminal) get nothing but the command's result; the operation reports the same way
 * either way, into a `Ref` it never waits on.
 */
import { Clock, Context, Duration, Effect, Ref } from "effect"

/** Where progress is drawn. */
export interface ProgressTerminal {
  /** Whether it is a terminal: nothing is drawn otherwise. */
  readonly isTTY: boolean
  /** Its width when known: a longer line would wrap, and the next redraw could not erase it. */
  readonly columns: number | undefined
  readonly write: (text: string) => void
}

/** The process's stderr, unless a test gives a terminal of its own. */
export class Terminal extends Context.Reference<Terminal>()("khala/cli/ProgressTerminal", {
  defaultValue: (): ProgressTerminal => ({
    isTTY: process.stderr.isTTY === true,
    get columns() {
      return process.stderr.columns
    },
    write: (text) => void process.stderr.write(text)
  })
}) {}

/** How often the line is redrawn; the first draw waits as long, so a quick operation shows nothing at all. */
export const redrawInterval = Duration.millis(500)

/** Erases the line the cursor is on. */
const eraseLine = "\r\x1b[K"

/**
 * The progress line: `label… elapsed`, then what the operation has done when it says (`detail`), cut to the
 * terminal's width.
 */
export const progressLine = (label: string, elapsed: Duration.Duration, detail: string, columns?: number): string => {
  const whole = Math.floor(Duration.toSeconds(elapsed))
  // Duration.format writes no unit for zero
  const seconds = whole === 0 ? "0s" : Duration.format(Duration.seconds(whole))
  const line = detail === "" ? `${label}… ${seconds}` : `${label}… ${seconds}: ${detail}`
  if (columns === undefined || columns < 2 || line.length < columns) return line
  return `${line.slice(0, columns - 2)}…`
}

/** A long operation's progress: its label, where it starts, and how a state reads on the line. */
export interface Tracked<S> {
  readonly label: string
  readonly initial: S
  /** What the operation has done, in a few words; empty says nothing beyond the label. */
  readonly describe: (state: S) => string
}

/**
 * Runs `operation`, giving it `report` to say how far it has got; on a terminal, the line is redrawn every
 * `redrawInterval` from the latest report, and erased when the operation ends, however it ends.
 */
export const withProgress = <S, A, E, R>(
  tracked: Tracked<S>,
  operation: (report: (state: S) => Effect.Effect<void>) => Effect.Effect<A, E, R>
): Effect.Effect<A, E, R> =>
  Effect.gen(function*() {
    const terminal = yield* Terminal
    const state = yield* Ref.make(tracked.initial)
    const report = (next: S) => Ref.set(state, next)
    if (!terminal.isTTY) return yield* operation(report)
    const started = yield* Clock.currentTimeMillis
    let drawn = false
    const draw = Effect.gen(function*() {
      const elapsed = Duration.millis((yield* Clock.currentTimeMillis) - started)
      const line = progressLine(tracked.label, elapsed, tracked.describe(yield* Ref.get(state)), terminal.columns)
      terminal.write(eraseLine + line)
      drawn = true
    })
    return yield* Effect.scoped(Effect.gen(function*() {
      yield* Effect.addFinalizer(() => Effect.sync(() => drawn && terminal.write(eraseLine)))
      // forked after the finalizer above, so it is stopped before the line is erased
      yield* draw.pipe(Effect.delay(redrawInterval), Effect.forever, Effect.forkScoped)
      return yield* operation(report)
    }))
  })
