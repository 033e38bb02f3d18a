import { describe, expect, it } from "vitest";

import { LIVE_TEXT_LIMIT, withDelta, withStep, type NodeLive } from "../src/editor/slices/live";
import { createEditorStore } from "../src/editor/store";
import { SPECS } from "./fixtures";

const delta = (text: string, offset: number, attempt = 1) => ({ text, offset, attempt });

function fold(deltas: ReturnType<typeof delta>[]): NodeLive | undefined {
  return deltas.reduce<NodeLive | undefined>((live, d) => withDelta(live, d), undefined);
}

describe("live text", () => {
  it("grows piece by piece at the offsets given", () => {
    expect(fold([delta("Hel", 0), delta("lo ", 3), delta("world", 6)])?.text).toBe("Hello world");
  });

  it("takes merged pieces, and a repeated or overlapping piece only once", () => {
    const live = fold([delta("Hello", 0), delta("Hello wor", 0), delta("lo world", 3), delta("wor", 6)]);
    expect(live?.text).toBe("Hello world");
    expect(live?.gap).toBe(false);
  });

  it("leaves the view as it is (same object) when a piece brings nothing new", () => {
    const live = fold([delta("Hello", 0)]);
    expect(withDelta(live, delta("ell", 1))).toBe(live);
  });

  it("starts again at a new attempt, and ignores late pieces of the old one", () => {
    let live = fold([delta("First try, cut", 0)]);
    live = withDelta(live, delta("Second", 0, 2));
    expect(live).toMatchObject({ attempt: 2, text: "Second" });
    live = withDelta(live, delta(" try, cut short", 14, 1));
    expect(live?.text).toBe("Second");
    expect(withDelta(live, delta(" go", 6, 2))?.text).toBe("Second go");
  });

  it("marks a gap when pieces were missed, and stops growing past the limit", () => {
    expect(fold([delta("abc", 0), delta("xyz", 10)])).toMatchObject({ text: "abcxyz", gap: true });
    const big = "x".repeat(LIVE_TEXT_LIMIT - 2);
    const live = fold([delta(big, 0), delta("12345", big.length)]);
    expect(live?.text.length).toBe(LIVE_TEXT_LIMIT);
    expect(live?.cut).toBe(true);
    expect(withDelta(live, delta("more", LIVE_TEXT_LIMIT + 3))).toBe(live);
  });

  it("keeps an agent's tool steps once each, per attempt", () => {
    let live = withStep(undefined, { step: 1, tool: "search", is_error: false, attempt: 1 });
    live = withStep(live, { step: 2, tool: "fetch", is_error: true, attempt: 1 });
    live = withStep(live, { step: 2, tool: "fetch", is_error: true, attempt: 1 });
    expect(live?.steps).toEqual([
      { step: 1, tool: "search", isError: false },
      { step: 2, tool: "fetch", isError: true },
    ]);
    expect(withStep(live, { step: 1, tool: "search", is_error: false, attempt: 2 })?.steps).toHaveLength(1);
  });
});

describe("live text in the store", () => {
  it("lands by node, only while a run is shown, and goes with the run", () => {
    const store = createEditorStore();
    store.getState().setNodeTypes(SPECS);
    store.getState().applyLive([{ type: "node.delta", nodeId: "ask", data: { text: "ignored", offset: 0, attempt: 1 } }]);
    expect(store.getState().live).toEqual({});

    store.getState().startRun("run_1");
    const other = { text: "", offset: 0, attempt: 1 };
    store.getState().applyLive([
      { type: "node.delta", nodeId: "ask", data: { text: "Hi ", offset: 0, attempt: 1 } },
      { type: "node.delta", nodeId: "ask", data: { text: "there", offset: 3, attempt: 1 } },
      { type: "node.step", nodeId: "agent", data: { step: 1, tool: "add", is_error: false, attempt: 1 } },
      { type: "node.delta", nodeId: "bad", data: { nope: true } },
      { type: "node.delta", nodeId: "empty", data: other },
    ]);
    const live = store.getState().live;
    expect(live.ask.text).toBe("Hi there");
    expect(live.agent.steps).toHaveLength(1);
    expect(live.bad).toBeUndefined();

    // Another node's piece leaves this node's view as it was: it does not re-render.
    store.getState().applyLive([{ type: "node.delta", nodeId: "agent", data: { text: "ok", offset: 0, attempt: 1 } }]);
    expect(store.getState().live.ask).toBe(live.ask);

    store.getState().clearRun();
    expect(store.getState().live).toEqual({});
  });

  it("opens and closes the viewer on a node's output", () => {
    const store = createEditorStore();
    store.getState().openViewer("ask", "text");
    expect(store.getState().viewer).toEqual({ nodeId: "ask", output: "text" });
    store.getState().openViewer("ask");
    expect(store.getState().viewer).toEqual({ nodeId: "ask", output: null });
    store.getState().closeViewer();
    expect(store.getState().viewer).toBeNull();
  });
});
