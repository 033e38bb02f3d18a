/** Sticky notes and groups on the canvas (see annotations.ts): adding, editing, resizing, and
 * taking a group's contents along when it is dragged. */
import { annotationNode, frameAround, insideGroup, isAnnotation, NOTE_SIZE, type AnnotationType } from "../annotations";
import type { EditorState } from "../store";
import { freshId, type SliceContext } from "./context";

export type AnnotationsSlice = Pick<EditorState, "addAnnotation" | "updateAnnotation" | "resized" | "selectGroup">;

export function annotationsSlice({ set, get, change, edits }: SliceContext): AnnotationsSlice {
  return {
    addAnnotation(type: AnnotationType, position) {
      const state = get();
      const id = freshId(type, new Set(state.nodes.map((n) => n.id)));
      // A group made with nodes selected frames them.
      const framed = type === "group" ? frameAround(state.nodes.filter((n) => n.selected && !isAnnotation(n))) : null;
      const node = annotationNode({
        id,
        type,
        position: framed ? { x: framed.x, y: framed.y } : position,
        width: framed?.width ?? (type === "group" ? 480 : NOTE_SIZE.width),
        height: framed?.height ?? (type === "group" ? 300 : NOTE_SIZE.height),
        data: { text: "", label: type === "group" ? "Group" : "", color: type === "group" ? "blue" : "yellow" },
      });
      const selected = { ...node, selected: true };
      change((s) => ({
        // Groups first: drawn behind the nodes.
        nodes:
          type === "group"
            ? [selected, ...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n))]
            : [...s.nodes.map((n) => (n.selected ? { ...n, selected: false } : n)), selected],
      }));
      return id;
    },

    updateAnnotation(id, patch) {
      const now = Date.now();
      const editKey = `${id}/annotation`;
      const coalesce = edits.lastConfigEdit?.key === editKey && now - edits.lastConfigEdit.at < 1000;
      edits.lastConfigEdit = { key: editKey, at: now };
      const apply = (s: EditorState) => ({
        nodes: s.nodes.map((n) => (n.id === id ? { ...n, data: { ...n.data, ...patch } } : n)),
      });
      if (coalesce) {
        const state = get();
        set({ ...apply(state), revision: state.revision + 1 });
      } else {
        change(apply);
      }
    },

    resized() {
      // The new size was applied as it was dragged (after a checkpoint): now it is unsaved.
      set({ revision: get().revision + 1 });
    },

    selectGroup(id) {
      const { nodes } = get();
      const group = nodes.find((n) => n.id === id);
      if (!group) return;
      const inside = new Set([id, ...insideGroup(group, nodes)]);
      set({ nodes: nodes.map((n) => (inside.has(n.id) === Boolean(n.selected) ? n : { ...n, selected: inside.has(n.id) })) });
    },
  };
}
