/** Copy and paste of the selected nodes and the wires between them. */
import type { EditorState } from "../store";
import { edgeId, freshId, freshLabel, type SliceContext } from "./context";

export type ClipboardSlice = Pick<EditorState, "clipboard" | "copy" | "paste">;

export function clipboardSlice({ set, get, change }: SliceContext): ClipboardSlice {
  return {
    clipboard: null,

    copy() {
      const { nodes, edges } = get();
      const chosen = nodes.filter((n) => n.selected);
      const ids = new Set(chosen.map((n) => n.id));
      const inside = edges.filter((e) => ids.has(e.source) && ids.has(e.target));
      set({ clipboard: chosen.length ? { nodes: structuredClone(chosen), edges: structuredClone(inside) } : null });
      return chosen.length;
    },

    paste() {
      const clip = get().clipboard;
      if (!clip || clip.nodes.length === 0) return 0;
      const { nodes, nodeTypes } = get();
      const taken = new Set(nodes.map((n) => n.id));
      const renamed = new Map<string, string>();
      const named = [...nodes];
      const pasted = clip.nodes.map((n) => {
        const id = freshId(n.type ?? "node", taken);
        taken.add(id);
        renamed.set(n.id, id);
        // A copy is told apart from its original: "Ask a model" pastes as "Ask a model 2".
        const copied = n.data.label && n.data.label !== n.id ? n.data.label : nodeTypes[n.type ?? ""]?.display_name || id;
        const copy = {
          ...structuredClone(n),
          id,
          selected: true,
          position: { x: n.position.x + 40, y: n.position.y + 40 },
          data: { ...structuredClone(n.data), label: freshLabel(copied, named) },
        };
        named.push(copy);
        return copy;
      });
      const wires = clip.edges.map((e) => {
        const wired = { ...e, source: renamed.get(e.source)!, target: renamed.get(e.target)!, selected: false };
        return { ...wired, id: edgeId(wired) };
      });
      change((s) => ({
        nodes: [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), ...pasted],
        edges: [...s.edges, ...wires],
      }));
      // The next paste lands further along, not on top of this one.
      set({
        clipboard: {
          nodes: clip.nodes.map((n) => ({ ...n, position: { x: n.position.x + 40, y: n.position.y + 40 } })),
          edges: clip.edges,
        },
      });
      return pasted.length;
    },
  };
}
