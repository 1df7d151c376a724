import { Command } from "@effect/cli"
import * as Audit from "./Audit.js"
import * as Migrate from "./Migrate.js"
import * as Outbox from "./Outbox.js"
import * as Publish from "./Publish.js"
import * as Retention from "./Retention.js"
import * as Revoke from "./Revoke.js"
import * as Serve from "./Serve.js"
import * as Status from "./Status.js"
import * as Tail from "./Tail.js"
import * as Token from "./Token.js"
import * as Topic from "./Topic.js"

const khala = Command.make("khala").pipe(
  Command.withDescription(
    "Khala sync engine. Configuration comes from the environment: DATABASE_URL (else an embedded database in " +
      "KHALA_DATA_DIR, default ./.khala), KHALA_HOST, KHALA_PORT, KHALA_AUTH_HS256_KEYS, KHALA_POLL_INTERVAL_MS and " +
      "more (see the README)."
  ),
  Command.withSubcommands([
    Serve.command,
    Migrate.command,
    Publish.command,
    Tail.command,
    Token.command,
    Revoke.command,
    Retention.command,
    Topic.command,
    Outbox.command,
    Audit.command,
    Status.command
  ])
)

export const run = Command.run(khala, { name: "khala", version: "0.1.0" })
