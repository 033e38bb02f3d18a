/** The toolbar's problem count, which opens the list of every problem; each entry shows its node. */
import { useReactFlow } from "@xyflow/react";
import { useEffect, useRef } from "react";

import { editorStore, useEditor } from "./store";

interface Entry {
  nodeId: string | null;
  text: string;
}

function useEntries(): Entry[] {
  const problems = useEditor((s) => s.problems);
  const graphProblems = useEditor((s) => s.graphProblems);
  return [
    ...graphProblems.map((text) => ({ nodeId: null, text })),
    ...Object.entries(problems).flatMap(([nodeId, list]) => list.map((text) => ({ nodeId, text }))),
  ];
}

export function ProblemsButton({ count, open, onOpenChange }: { count: number; open: boolean; onOpenChange: (open: boolean) => void }) {
  const entries = useEntries();
  const labels = useEditor((s) => s.nodes);
  const { setCenter, getInternalNode } = useReactFlow();
  const box = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!open) return;
    const onDown = (event: MouseEvent) => {
      if (box.current && !box.current.contains(event.target as Node)) onOpenChange(false);
    };
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && onOpenChange(false);
    window.addEventListener("mousedown", onDown);
    window.addEventListener("keydown", onKey);
    return () => {
      window.removeEventListener("mousedown", onDown);
      window.removeEventListener("keydown", onKey);
    };
  }, [open, onOpenChange]);

  const show = (nodeId: string) => {
    editorStore.getState().selectOnly(nodeId);
    const node = getInternalNode(nodeId);
    if (node) {
      const width = node.measured.width ?? 220;
      const height = node.measured.height ?? 90;
      void setCenter(node.internals.positionAbsolute.x + width / 2, node.internals.positionAbsolute.y + height / 2, { zoom: 1, duration: 250 });
    }
    onOpenChange(false);
  };

  return (
    <div className="problems-menu" ref={box}>
      <button
        type="button"
        className="problem-count"
        data-testid="problem-count"
        aria-expanded={open}
        aria-controls="problems-list"
        onClick={() => onOpenChange(!open)}
      >
        {count} problem{count > 1 ? "s" : ""}
      </button>
      {open && (
        <ul id="problems-list" className="problems-popover" aria-label="Problems of this workflow">
          {entries.map((entry, i) => {
            const label = entry.nodeId ? labels.find((n) => n.id === entry.nodeId)?.data.label || entry.nodeId : null;
            return (
              <li key={`${entry.nodeId}-${i}`}>
                {entry.nodeId ? (
                  <button type="button" onClick={() => show(entry.nodeId!)}>
                    <span className="problem-node">{label}</span>
                    <span>{entry.text}</span>
                  </button>
                ) : (
                  <div className="problem-graph">
                    <span className="problem-node">Workflow</span>
                    <span>{entry.text}</span>
                  </div>
                )}
              </li>
            );
          })}
        </ul>
      )}
    </div>
  );
}
