import { describe, expect, it } from "vitest";

import { SseParser } from "../src/api/sse";
import { applyEvent, startTurn, toolSteps } from "../src/threads/turn";

const STREAM =
  'id: 0\nevent: delta\ndata: {"text":"Hel"}\n\n' +
  'id: 1\nevent: tool_call\ndata: {"step":1,"tool":"add","arguments":{"a":1,"b":2},"result":3,"is_error":false}\n\n' +
  'id: 2\nevent: delta\ndata: {"text":"lo"}\n\n';

describe("SseParser", () => {
  it("reads events whatever the chunking", () => {
    const whole = new SseParser().push(STREAM);
    for (const size of [1, 2, 3, 7, 50]) {
      const parser = new SseParser();
      const events = [];
      for (let i = 0; i < STREAM.length; i += size) events.push(...parser.push(STREAM.slice(i, i + size)));
      expect(events).toEqual(whole);
    }
    expect(whole.map((e) => [e.event, e.id])).toEqual([["delta", "0"], ["tool_call", "1"], ["delta", "2"]]);
    expect(JSON.parse(whole[1].data).tool).toBe("add");
  });

  it("handles CRLF, comments, multi-line data and the default event name", () => {
    const parser = new SseParser();
    const events = parser.push(": keep-alive\r\ndata: one\r\ndata:two\r");
    expect(events).toEqual([]);
    expect(parser.push("\n\r\n")).toEqual([{ event: "message", data: "one\ntwo", id: null }]);
  });

  it("drops an event cut off before its blank line", () => {
    const parser = new SseParser();
    expect(parser.push('event: delta\ndata: {"text":"x"}\n')).toEqual([]);
    expect(parser.end()).toEqual([]);
  });

  it("ignores a blank line with no data", () => {
    expect(new SseParser().push("event: delta\n\n")).toEqual([]);
  });
});

describe("a streamed turn", () => {
  const events = new SseParser().push(STREAM);

  it("gathers deltas and tool calls, then the stored reply", () => {
    let turn = startTurn("what is 1+2?");
    for (const event of events) turn = applyEvent(turn, event);
    expect(turn.text).toBe("Hello");
    expect(turn.steps).toEqual([{ step: 1, tool: "add", arguments: { a: 1, b: 2 }, result: 3, is_error: false }]);
    expect(turn.state).toBe("streaming");
    const reply = {
      user_message: { id: "m1", role: "user", content: "what is 1+2?" },
      message: { id: "m2", role: "assistant", content: "Hello", tool_calls: [{ step: 1, tool: "add", arguments: {}, result: 3, is_error: false }, { step: 2, tool: null }] },
    };
    turn = applyEvent(turn, { event: "message", data: JSON.stringify(reply), id: "3" });
    expect(turn.state).toBe("done");
    expect(turn.reply?.message.id).toBe("m2");
    expect(turn.steps.map((s) => s.tool)).toEqual(["add"]);
  });

  it("fails on an error event with the problem's detail", () => {
    const turn = applyEvent(startTurn("hi"), {
      event: "error",
      data: JSON.stringify({ type: "about:blank", title: "Bad Gateway", status: 502, detail: "openai: 429 too many requests" }),
      id: "1",
    });
    expect(turn.state).toBe("failed");
    expect(turn.error).toBe("openai: 429 too many requests (502)");
  });

  it("fails on data it cannot read", () => {
    const turn = applyEvent(startTurn("hi"), { event: "delta", data: "{not json", id: null });
    expect(turn.state).toBe("failed");
    expect(turn.error).toContain("unreadable delta");
  });

  it("keeps only real tool calls from a stored message", () => {
    expect(toolSteps(null)).toEqual([]);
    expect(toolSteps([{ step: 1, tool: null, result: "answer" }, { step: 1, tool: "x", is_error: true }])).toEqual([
      { step: 1, tool: "x", arguments: null, result: null, is_error: true },
    ]);
  });
});
