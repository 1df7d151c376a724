import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Clock, Console, Effect, Either, Option } from "effect"
import * as Database from "../layers/Database.js"
import type { RevocationTarget } from "../services/Revocations.js"
import { migrate } from "../storage/postgres/Migrations.js"
import * as RevocationsPg from "../storage/postgres/RevocationsPg.js"
import { parseTtl } from "./Token.js"

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

/** The end of a revocation: `now` (which lifts one), an ISO date, or a lifetime from now (30s, 15m, 1h, 2d). */
export const parseUntil = (input: string, now: number): Option.Option<Date> => {
  const text = input.trim()
  if (text === "now") return Option.some(new Date(now))
  if (/^\d{4}-\d{2}-\d{2}/.test(text)) {
    const time = Date.parse(text)
    return Number.isFinite(time) ? Option.some(new Date(time)) : Option.none()
  }
  return Option.map(parseTtl(text), (seconds) => new Date(now + seconds * 1000))
}

const target = (name: "jti" | "sub", description: string) =>
  Options.text(name).pipe(
    Options.withDescription(description),
    Options.mapEffect((value) =>
      value.trim() === "" ? invalid(`--${name} must not be empty`) : Effect.succeed(value.trim())
    )
  )

export const command = Command.make(
  "revoke",
  {
    target: target("jti", "Revoke the token with this jti").pipe(
      Options.orElseEither(target("sub", "Revoke every token of this subject (sub claim)"))
    ),
    until: Options.text("until").pipe(
      Options.withDescription(
        "When the revocation ends: an ISO date, a lifetime (30s, 15m, 1h, 2d), or now to lift it"
      ),
      Options.withDefault("24h"),
      Options.mapEffect((text) =>
        Effect.flatMap(Clock.currentTimeMillis, (now) =>
          Option.match(parseUntil(text, now), {
            onNone: () => invalid(`--until "${text}" is not an ISO date, a lifetime such as 1h or 2d, or now`),
            onSome: (until) => Effect.succeed({ until, now })
          }))
      )
    )
  },
  (args) =>
    Effect.gen(function*() {
      const { now, until } = args.until
      const revoked: RevocationTarget = Either.match(args.target, {
        onLeft: (tokenId) => ({ tokenId }),
        onRight: (subject) => ({ subject })
      })
      yield* migrate
      yield* RevocationsPg.revoke(revoked, until)
      const name = "tokenId" in revoked ? `jti ${revoked.tokenId}` : `sub ${revoked.subject}`
      yield* Console.log(
        until.getTime() <= now
          ? `lifted the revocation of ${name}`
          : `revoked ${name} until ${until.toISOString()}`
      )
    })
).pipe(
  Command.withDescription(
    "Revoke a token (--jti) or every token of a subject (--sub) until --until (default 24h): servers on the database " +
      "refuse it and close its sockets within about a second"
  ),
  Command.provide(Database.layerConfig)
)
