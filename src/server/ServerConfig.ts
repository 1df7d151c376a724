import { Config } from "effect"

/** Where `khala serve` listens. */
export const ServerConfig = Config.all({
  host: Config.string("KHALA_HOST").pipe(
    Config.withDefault("127.0.0.1"),
    Config.withDescription("Interface to listen on")
  ),
  port: Config.port("KHALA_PORT").pipe(
    Config.withDefault(4000),
    Config.withDescription("TCP port for HTTP and the WebSocket endpoint")
  )
})
