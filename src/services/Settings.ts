import { Config, Duration } from "effect"

/** An integer setting, refused with a message naming its bounds when it falls outside them. */
export const integerWithin = (name: string, min: number, max: number) =>
  Config.integer(name).pipe(
    Config.validate({ message: `must be between ${min} and ${max}`, validation: (n) => n >= min && n <= max })
  )

/** A duration setting, refused with a message naming its bounds when it falls outside them. */
export const durationWithin = (name: string, min: Duration.DurationInput, max: Duration.DurationInput) =>
  Config.duration(name).pipe(
    Config.validate({
      message: `must be between ${Duration.format(min)} and ${Duration.format(max)}`,
      validation: (d) => Duration.between(d, { minimum: min, maximum: max })
    })
  )
