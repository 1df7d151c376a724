import { Config } from "effect"

/** An integer setting, refused with a message naming its bounds when it falls outside them. */
export const integerWithin = (name: string, min: number, max: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `must be between ${min} and ${max}`, validation: (n) => n >= min && n <= max })
  )
