import { describe, expect, it } from "@effect/vitest"
import { Option } from "effect"
import { exceedsDepth, frameHead, headBytes } from "../../src/server/InboundFrame.js"

const head = (text: string) => frameHead(Buffer.from(text, "utf8"))

describe("InboundFrame.frameHead", () => {
  it("reads join_ref, ref, topic and event without the payload", () => {
    expect(head(`["j1","7","sync:v1","sync:subscribe",{"topics":`)).toEqual(
      Option.some({ joinRef: "j1", ref: "7", topic: "sync:v1", event: "sync:subscribe" })
    )
    expect(head(` [ null , "7" , "phoenix" , "heartbeat" , {}]`)).toEqual(
      Option.some({ joinRef: null, ref: "7", topic: "phoenix", event: "heartbeat" })
    )
    expect(head(`["a\\"b","r\\u0031","sync:v1","x",1]`)).toEqual(
      Option.some({ joinRef: "a\"b", ref: "r1", topic: "sync:v1", event: "x" })
    )
  })

  it("is none when the head is not four strings or nulls within its first bytes", () => {
    for (
      const text of [
        `{"topic":"sync:v1"}`,
        `[1,"7","sync:v1","x",{}]`,
        `["j","7",null,"x",{}]`,
        `["j","7","sync:v1"]`,
        `["j","7","sync:v1","x"`,
        `["${"r".repeat(headBytes)}","7","sync:v1","x",{}]`
      ]
    ) {
      expect({ text: text.slice(0, 40), head: head(text) }).toEqual({ text: text.slice(0, 40), head: Option.none() })
    }
  })
})

describe("InboundFrame.exceedsDepth", () => {
  it("counts arrays and objects, not brackets inside strings", () => {
    expect(exceedsDepth(`[1,{"a":[2]}]`, 3)).toBe(false)
    expect(exceedsDepth(`[1,{"a":[[2]]}]`, 3)).toBe(true)
    expect(exceedsDepth(`["[[[[[[", "\\"[[[[", {}]`, 2)).toBe(false)
    expect(exceedsDepth("[".repeat(2500) + "]".repeat(2500))).toBe(true)
  })
})
