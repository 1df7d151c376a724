import { Command, HelpDoc, Options, ValidationError } from "@effect/cli"
import { Console, Duration, Effect, Either, Option } from "effect"
import { readFileSync } from "node:fs"
import * as AuthJose from "../auth/AuthJose.js"
import { parsePrivateKey } from "../auth/JwksKeys.js"
import * as TopicCatalog from "../protocol/TopicCatalog.js"
import { TokenSigner } from "../services/TokenVerifier.js"
import { extraTopics } from "./Topics.js"

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400 }

/**
 * A lifetime as `30s`, `15m`, `1h`, `2d`, or Effect's long form (`90 minutes`), in whole seconds; `None` unless it is
 * at least one second.
 */
export const parseTtl = (input: string): Option.Option<number> => {
  const text = input.trim()
  const short = /^(\d+)\s*([smhd])$/.exec(text)
  const seconds = short !== null
    ? Number(short[1]) * (unitSeconds[short[2] ?? ""] ?? Number.NaN)
    : Option.match(Duration.decodeUnknown(text), {
      onNone: () => Number.NaN,
      onSome: (duration) => Math.floor(Duration.toSeconds(duration))
    })
  return Number.isSafeInteger(seconds) && seconds >= 1 ? Option.some(seconds) : Option.none()
}

const invalid = (message: string) => Effect.fail(ValidationError.invalidValue(HelpDoc.p(message)))

/** A refusal found once the arguments are parsed: printed as one line (`khala: ...`). */
const refused = (message: string) => Effect.fail(new AuthJose.AuthConfigError({ message }))

const nonEmpty = (name: string) =>
  Options.mapEffect((value: string) =>
    value.trim() === "" ? invalid(`--${name} must not be empty`) : Effect.succeed(value.trim())
  )

export const command = Command.make(
  "token",
  {
    sub: Options.text("sub").pipe(Options.withDescription("Subject (sub claim)"), nonEmpty("sub")),
    org: Options.text("org").pipe(Options.withDescription("Organization (oa_org_id claim)"), nonEmpty("org")),
    scopes: Options.text("scopes").pipe(
      Options.withDescription("Topics the token may subscribe to, comma-separated (oa_sync_scopes claim)"),
      Options.map((scopes) => scopes.split(",").map((scope) => scope.trim()).filter((scope) => scope !== ""))
    ),
    ttl: Options.text("ttl").pipe(
      Options.withDescription("Lifetime: 30s, 15m, 1h, 2d"),
      Options.withDefault("1h"),
      Options.mapEffect((ttl) =>
        Option.match(parseTtl(ttl), {
          onNone: () => invalid(`--ttl "${ttl}" is not a lifetime such as 30s, 15m, 1h or 2d`),
          onSome: Effect.succeed
        })
      )
    ),
    privateKey: Options.file("private-key", { exists: "yes" }).pipe(
      Options.withDescription(
        "Sign RS256 / ES256 with this private key: a private JWK (with its kid) or a PKCS8 PEM (with --kid)"
      ),
      Options.optional
    ),
    kid: Options.text("kid").pipe(
      Options.withDescription("The kid header of a --private-key token (default: the JWK's kid)"),
      nonEmpty("kid"),
      Options.optional
    )
  },
  (args) =>
    Effect.gen(function*() {
      // A scope grants exactly the catalog topic it names (protocol.md §8): any other grants nothing. Signed anyway
      // (a runtime may extend the catalog on its own nodes), with one line on stderr so a typo does not go unseen.
      const catalog = TopicCatalog.make({ topics: yield* extraTopics })
      if (Either.isRight(catalog)) {
        const unknown = args.scopes.filter((scope) => Option.isNone(catalog.right.get(scope)))
        if (unknown.length > 0) {
          yield* Console.error(
            `khala: warning: scope${unknown.length === 1 ? "" : "s"} outside the topic catalog, granting nothing ` +
              `here: ${unknown.join(", ")}`
          )
        }
      }
      const signer = yield* Option.match(args.privateKey, {
        onNone: () =>
          Effect.gen(function*() {
            if (Option.isSome(args.kid)) return yield* refused("--kid goes with --private-key")
            const config = yield* AuthJose.AuthConfig
            if (config.keys.length === 0 && (Option.isSome(config.jwksFile) || Option.isSome(config.jwksUrl))) {
              return yield* refused(
                "the server verifies with a JWKS keyring, whose private keys it does not hold: give --private-key"
              )
            }
            return yield* Effect.provide(TokenSigner, AuthJose.layerConfig)
          }),
        onSome: (file) =>
          Effect.gen(function*() {
            const text = yield* Effect.try({
              try: () => readFileSync(file, "utf8"),
              catch: (error) => new AuthJose.AuthConfigError({ message: `--private-key ${file}: ${error}` })
            })
            const key = parsePrivateKey(text, Option.getOrUndefined(args.kid))
            if (Either.isLeft(key)) return yield* refused(`--private-key ${file}: ${key.left}`)
            return AuthJose.makeSigner(key.right, AuthJose.verifyOptionsOf(yield* AuthJose.AuthConfig))
          })
      })
      const token = yield* signer.sign({
        subject: args.sub,
        orgId: args.org,
        scopes: args.scopes,
        ttlSeconds: args.ttl
      })
      yield* Console.log(token)
    })
).pipe(
  Command.withDescription(
    "Print a token signed with the first key of KHALA_AUTH_HS256_KEYS (without keys, the development key in " +
      "KHALA_DATA_DIR, which khala serve also uses), or RS256 / ES256 with --private-key"
  )
)
