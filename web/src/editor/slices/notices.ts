/** The banner: one notice at a time, and errors that a later success of their topic takes back. */
import type { EditorState } from "../store";
import type { SliceContext } from "./context";

export type NoticesSlice = Pick<EditorState, "notice" | "notify" | "resolve" | "dismissNotice">;

export function noticesSlice({ set, get }: SliceContext): NoticesSlice {
  return {
    notice: null,

    notify(kind, text, topic) {
      set({ notice: { kind, text, topic } });
    },

    resolve(topic) {
      const notice = get().notice;
      if (notice?.kind === "error" && notice.topic === topic) set({ notice: null });
    },

    dismissNotice() {
      set({ notice: null });
    },
  };
}
