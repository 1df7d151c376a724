/**
 * Request/response over the IPC channel of a forked bench script. A protocol maps each request type to the shapes
 * of its request and response; the parent calls, the child answers.
 */
import type { ChildProcess } from "node:child_process"

export type Protocol = Record<string, { readonly request: unknown; readonly response: unknown }>

type Message = { readonly id: number; readonly type: string; readonly request: unknown }
type Reply =
  | { readonly id: number; readonly ok: true; readonly response: unknown }
  | { readonly id: number; readonly ok: false; readonly error: string }
/** Sent once the child listens: a message sent before that would be dropped. */
type Ready = { readonly ready: true }

/**
 * The parent's end: each call resolves with the child's response, or rejects with its error or its exit. Plain
 * promises, so that this module stays light enough for the child scripts that import it too.
 */
export const caller = <P extends Protocol>(child: ChildProcess) => {
  let nextId = 0
  const pending = new Map<number, { resolve: (value: unknown) => void; reject: (error: Error) => void }>()
  let markReady: () => void = () => {}
  // settles when the child listens, or exits without ever listening
  const ready = new Promise<void>((resolve) => {
    markReady = resolve
    child.once("exit", () => resolve())
  })
  child.on("message", (reply: Reply | Ready) => {
    if ("ready" in reply) return markReady()
    const call = pending.get(reply.id)
    if (call === undefined) return
    pending.delete(reply.id)
    if (reply.ok) call.resolve(reply.response)
    else call.reject(new Error(reply.error))
  })
  const exitError = () => new Error(`bench process exited (${child.signalCode ?? child.exitCode})`)
  // a child that dies fails its pending calls instead of leaving them waiting
  child.once("exit", () => {
    for (const call of pending.values()) call.reject(exitError())
    pending.clear()
  })
  return async <K extends keyof P & string>(type: K, request: P[K]["request"]): Promise<P[K]["response"]> => {
    await ready
    if (child.exitCode !== null || child.signalCode !== null) throw exitError()
    return new Promise<P[K]["response"]>((resolve, reject) => {
      const id = nextId++
      pending.set(id, { resolve: resolve as (value: unknown) => void, reject })
      child.send({ id, type, request } satisfies Message)
    })
  }
}

/**
 * The child's end: answers each request with its handler. The child exits when the parent goes away, so a parent
 * that dies without cleaning up leaves no load client or server behind.
 */
export const answer = <P extends Protocol>(
  handlers: { readonly [K in keyof P]: (request: P[K]["request"]) => Promise<P[K]["response"]> | P[K]["response"] }
) => {
  const send = process.send?.bind(process)
  if (send === undefined) throw new Error("this script must be forked with an IPC channel")
  process.on("disconnect", () => process.exit(0))
  process.on("message", (message: Message) => {
    const handler = handlers[message.type as keyof P]
    Promise.resolve()
      .then(() => {
        if (handler === undefined) throw new Error(`unknown request ${message.type}`)
        return handler(message.request as P[keyof P]["request"])
      })
      .then(
        (response) => send({ id: message.id, ok: true, response } satisfies Reply),
        (error: unknown) => {
          const text = error instanceof Error ? error.stack ?? error.message : String(error)
          send({ id: message.id, ok: false, error: text } satisfies Reply)
        }
      )
  })
  send({ ready: true } satisfies Ready)
}
