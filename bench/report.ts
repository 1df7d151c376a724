/** One measured figure beside the baseline it is judged against, measured in the same run. */
export interface Figure {
  readonly scenario: string
  readonly figure: string
  readonly unit: string
  readonly value: number
  readonly baseline: string
  readonly baselineValue: number
  /** value / baselineValue */
  readonly ratio: number
}

export const figure = (f: Omit<Figure, "ratio">): Figure => ({ ...f, ratio: f.value / f.baselineValue })

const round = (n: number) => (Number.isNaN(n) ? "" : Math.abs(n) >= 100 ? Math.round(n).toString() : n.toFixed(2))

export const printTable = (figures: ReadonlyArray<Figure>) => {
  const rows = [
    ["scenario", "figure", "value", "unit", "baseline", "baseline value", "ratio"],
    ...figures.map((
      f
    ) => [f.scenario, f.figure, round(f.value), f.unit, f.baseline, round(f.baselineValue), round(f.ratio)])
  ]
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)))
  for (const row of rows) console.log(row.map((cell, i) => cell.padEnd(widths[i]!)).join("  "))
}
