import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import type { StoreApi } from "zustand/vanilla";

import { PositionSaver, type Positions } from "../src/editor/positions";
import { createEditorStore, movedBetween, type EditorState } from "../src/editor/store";
import { SPECS } from "./fixtures";

let store: StoreApi<EditorState>;
const s = () => store.getState();
const dirty = () => s().revision !== s().savedRevision;

function drag(id: string, x: number, y: number) {
  s().checkpoint();
  s().onNodesChange([{ type: "position", id, position: { x: x / 2, y: y / 2 }, dragging: true }]);
  s().onNodesChange([{ type: "position", id, position: { x, y }, dragging: false }]);
}

beforeEach(() => {
  store = createEditorStore();
  s().setNodeTypes(SPECS);
  s().load({
    schema_version: 1,
    nodes: [
      { id: "a", type: "text.value", position: { x: 0, y: 0 }, data: { config: { text: "hi" } } },
      { id: "b", type: "text.value", position: { x: 300, y: 0 }, data: { config: { text: "yo" } } },
    ],
    edges: [],
  });
});

describe("moves in the store", () => {
  it("a move of a saved graph is saved in place: it stays saved", () => {
    drag("a", 10, 20);
    expect(dirty()).toBe(false);
    expect(s().moved).toEqual({ a: true });
    expect(s().takeMoved()).toEqual({ a: { x: 10, y: 20 } });
    expect(s().moved).toEqual({});
  });

  it("a move of a graph with unsaved changes goes with the save", () => {
    s().updateLabel("a", "renamed");
    drag("b", 5, 5);
    expect(dirty()).toBe(true);
    expect(s().moved).toEqual({});
  });

  it("undoing a move is a move; undoing an edit is not", () => {
    drag("a", 10, 20);
    s().takeMoved();
    s().undo();
    expect(s().nodes[0].position).toEqual({ x: 0, y: 0 });
    expect(dirty()).toBe(false);
    expect(s().takeMoved()).toEqual({ a: { x: 0, y: 0 } });
    s().redo();
    expect(s().takeMoved()).toEqual({ a: { x: 10, y: 20 } });
    s().updateLabel("a", "x");
    expect(dirty()).toBe(true);
    // Undone back to the saved graph (with the positions saved in place): nothing to save.
    s().undo();
    expect(dirty()).toBe(false);
    s().redo();
    expect(dirty()).toBe(true);
  });

  it("takes the latest position, and skips nodes no longer on the canvas", () => {
    drag("a", 10, 20);
    drag("a", 30, 40);
    drag("b", 1, 1);
    s().selectOnly("b");
    s().removeSelected();
    expect(s().takeMoved()).toEqual({ a: { x: 30, y: 40 } });
  });

  it("tells a move from any other change", () => {
    const before = { nodes: s().nodes, edges: s().edges };
    drag("b", 9, 9);
    expect(movedBetween(before, { nodes: s().nodes, edges: s().edges })).toEqual(["b"]);
    s().updateConfig("a", "text", "changed");
    expect(movedBetween(before, { nodes: s().nodes, edges: s().edges })).toBeNull();
  });

  it("a failed save in place leaves the graph unsaved", () => {
    drag("a", 10, 20);
    s().takeMoved();
    s().movesNotSaved();
    expect(dirty()).toBe(true);
  });
});

describe("PositionSaver", () => {
  beforeEach(() => vi.useFakeTimers());
  afterEach(() => vi.useRealTimers());

  it("sends once, 400 ms after the last drag, the latest positions", async () => {
    const sent: Positions[] = [];
    const saver = new PositionSaver({ store, send: async (p) => void sent.push(p), onError: () => undefined });
    drag("a", 10, 20);
    await vi.advanceTimersByTimeAsync(300);
    drag("b", 50, 60);
    await vi.advanceTimersByTimeAsync(300);
    expect(sent).toEqual([]);
    await vi.advanceTimersByTimeAsync(150);
    expect(sent).toEqual([{ a: { x: 10, y: 20 }, b: { x: 50, y: 60 } }]);
    expect(saver.busy).toBe(false);
    saver.dispose();
  });

  it("one request at a time, in order", async () => {
    const order: string[] = [];
    let release: () => void = () => undefined;
    const saver = new PositionSaver({
      store,
      send: (p) => {
        order.push(`start ${JSON.stringify(p)}`);
        return new Promise<void>((resolve) => {
          release = () => {
            order.push("end");
            resolve();
          };
        });
      },
      onError: () => undefined,
    });
    drag("a", 1, 1);
    const first = saver.flush();
    drag("a", 2, 2);
    const second = saver.flush();
    await vi.advanceTimersByTimeAsync(0);
    expect(order).toEqual(['start {"a":{"x":1,"y":1}}']);
    release();
    await first;
    await vi.advanceTimersByTimeAsync(0);
    release();
    await second;
    expect(order).toEqual(['start {"a":{"x":1,"y":1}}', "end", 'start {"a":{"x":2,"y":2}}', "end"]);
    saver.dispose();
  });

  it("a failure keeps the positions for the next save and says so", async () => {
    const errors: unknown[] = [];
    const saver = new PositionSaver({ store, send: async () => Promise.reject(new Error("offline")), onError: (e) => errors.push(e) });
    drag("a", 10, 20);
    await vi.advanceTimersByTimeAsync(500);
    expect(errors).toHaveLength(1);
    expect(dirty()).toBe(true);
    expect(s().toDefinition().nodes[0]).toMatchObject({ id: "a", position: { x: 10, y: 20 } });
    saver.dispose();
  });
});
