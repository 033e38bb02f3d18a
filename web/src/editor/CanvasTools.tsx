/**
 * Two ways around the canvas without the mouse hunting: find a node by a few letters and go to
 * it, and add a node already wired to a port by dropping a wire on empty space.
 */
import { useReactFlow } from "@xyflow/react";
import { forwardRef, useEffect, useId, useMemo, useRef, useState } from "react";

import type { PortType } from "../api/types";
import NodeIcon from "../components/NodeIcon";
import { connectableTypes, findNodes } from "./finding";
import type { PortSide } from "./ports";
import { editorStore, useEditor, type FlowNode } from "./store";

const SHOWN_MATCHES = 8;

/** Bring `node` to the middle of the canvas, selected, at a zoom where it can be read. */
function useGoTo(): (node: FlowNode) => void {
  const flow = useReactFlow();
  return (node) => {
    editorStore.getState().selectOnly(node.id);
    const width = node.measured?.width ?? 240;
    const height = node.measured?.height ?? 100;
    void flow.setCenter(node.position.x + width / 2, node.position.y + height / 2, { zoom: Math.max(flow.getZoom(), 0.8), duration: 250 });
  };
}

/** The "find on canvas" box: Enter goes to the next match, Shift+Enter to the one before. */
export const CanvasSearch = forwardRef<HTMLInputElement>(function CanvasSearch(_props, ref) {
  const [query, setQuery] = useState("");
  const [open, setOpen] = useState(false);
  const [current, setCurrent] = useState(-1);
  const nodes = useEditor((s) => (query.trim() ? s.nodes : null));
  const nodeTypes = useEditor((s) => s.nodeTypes);
  const matches = useMemo(() => (nodes ? findNodes(nodes, nodeTypes, query) : []), [nodes, nodeTypes, query]);
  const goTo = useGoTo();
  const listId = useId();

  const go = (index: number) => {
    if (matches.length === 0) return;
    const at = ((index % matches.length) + matches.length) % matches.length;
    setCurrent(at);
    goTo(matches[at]);
  };

  return (
    <div className="canvas-search" role="search">
      <input
        ref={ref}
        type="search"
        aria-label="Find a node on the canvas"
        placeholder="Find on canvas (Ctrl+F)"
        value={query}
        role="combobox"
        aria-expanded={open && matches.length > 0}
        aria-controls={listId}
        aria-activedescendant={current >= 0 && matches[current] ? `${listId}-${matches[current].id}` : undefined}
        onChange={(e) => {
          setQuery(e.target.value);
          setCurrent(-1);
          setOpen(true);
        }}
        onFocus={() => setOpen(true)}
        onBlur={() => window.setTimeout(() => setOpen(false), 150)}
        onKeyDown={(e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            go(e.shiftKey ? current - 1 : current + 1);
          } else if (e.key === "ArrowDown") {
            e.preventDefault();
            go(current + 1);
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            go(current - 1);
          } else if (e.key === "Escape") {
            setQuery("");
            setCurrent(-1);
            e.currentTarget.blur();
          }
        }}
      />
      {query.trim() && (
        <span className="search-count muted" role="status">
          {matches.length === 0 ? "no match" : current >= 0 ? `${current + 1} of ${matches.length}` : `${matches.length} match${matches.length > 1 ? "es" : ""}`}
        </span>
      )}
      {open && matches.length > 0 && (
        <ul className="search-results" id={listId} role="listbox" aria-label="Nodes found">
          {matches.slice(0, SHOWN_MATCHES).map((node, i) => {
            const spec = nodeTypes[node.type ?? ""];
            return (
              <li
                key={node.id}
                id={`${listId}-${node.id}`}
                role="option"
                aria-selected={i === current}
                onMouseDown={(e) => e.preventDefault()}
                onClick={() => go(i)}
              >
                <NodeIcon icon={spec?.icon} category={spec?.category} color={spec?.color ?? "#64748b"} size={12} />
                <span className="search-label">{node.data.label || node.id}</span>
                <span className="muted small">{spec?.display_name ?? node.type} · {node.id}</span>
              </li>
            );
          })}
          {matches.length > SHOWN_MATCHES && <li className="muted small" role="presentation">{matches.length - SHOWN_MATCHES} more: Enter goes through them all</li>}
        </ul>
      )}
    </div>
  );
});

export interface QuickAddRequest {
  /** Where the palette opens: where the wire was dropped, in pixels from the canvas's top-left corner, moved to fit on the canvas. */
  at: { x: number; y: number };
  /** Where the node added goes on the graph (its top-left corner): beside the end of the wire, in sight. */
  position: { x: number; y: number };
  from: { nodeId: string; handle: string; side: PortSide };
  portType: PortType;
}

/** The palette of the node types that may join the dropped wire, at the point it was dropped. */
export function QuickAdd({ request, onClose }: { request: QuickAddRequest; onClose: () => void }) {
  const nodeTypes = useEditor((s) => s.nodeTypes);
  const [query, setQuery] = useState("");
  const [active, setActive] = useState(0);
  const box = useRef<HTMLDivElement>(null);
  // Where the pointer last moved over the list. The choice follows the pointer only when it
  // moves: a list filtered by typing slides other types under a pointer at rest (Chromium then
  // sends mouseover, no mousemove; some browsers a mousemove to the same spot), and Enter must add
  // the match the keyboard chose, not whichever type came to lie under the mouse.
  const pointer = useRef<{ x: number; y: number } | null>(null);
  const listId = useId();
  const types = useMemo(
    () => connectableTypes(nodeTypes, request.portType, request.from.side, query),
    [nodeTypes, request.portType, request.from.side, query],
  );

  useEffect(() => {
    const onDown = (event: MouseEvent) => {
      if (box.current && !box.current.contains(event.target as Node)) onClose();
    };
    window.addEventListener("mousedown", onDown, true);
    return () => window.removeEventListener("mousedown", onDown, true);
  }, [onClose]);

  const add = (type: string) => {
    const { position, from } = request;
    const id = editorStore.getState().addConnectedNode(type, { x: Math.round(position.x), y: Math.round(position.y) }, from);
    if (!id) editorStore.getState().notify("error", "That node type has no port this wire fits.", "connect");
    onClose();
  };

  const what = request.from.side === "source" ? `taking ${request.portType}` : `giving ${request.portType}`;
  return (
    <div
      ref={box}
      className="quick-add"
      role="dialog"
      aria-label={`Add a node ${what}`}
      style={{ left: request.at.x, top: request.at.y }}
      onKeyDown={(e) => e.key === "Escape" && (e.stopPropagation(), onClose())}
    >
      <div className="quick-add-title">Add a node {what}, wired to {request.from.nodeId}.{request.from.handle}</div>
      <input
        type="search"
        autoFocus
        aria-label="Search node types"
        placeholder="Search node types…"
        value={query}
        role="combobox"
        aria-expanded="true"
        aria-controls={listId}
        aria-activedescendant={types[active] ? `${listId}-${types[active].type}` : undefined}
        onChange={(e) => {
          setQuery(e.target.value);
          setActive(0);
        }}
        onKeyDown={(e) => {
          if (e.key === "ArrowDown") {
            e.preventDefault();
            setActive((a) => Math.min(a + 1, types.length - 1));
          } else if (e.key === "ArrowUp") {
            e.preventDefault();
            setActive((a) => Math.max(a - 1, 0));
          } else if (e.key === "Enter" && types[active]) {
            e.preventDefault();
            add(types[active].type);
          }
        }}
      />
      {types.length === 0 ? (
        <p className="muted small">No node type takes this wire{query ? " and matches" : ""}.</p>
      ) : (
        <ul id={listId} role="listbox" aria-label="Node types that fit">
          {types.map((spec, i) => (
            <li
              key={spec.type}
              id={`${listId}-${spec.type}`}
              role="option"
              aria-selected={i === active}
              data-node-type={spec.type}
              onMouseMove={(e) => {
                const last = pointer.current;
                pointer.current = { x: e.clientX, y: e.clientY };
                if (last?.x !== e.clientX || last?.y !== e.clientY) setActive(i);
              }}
              onClick={() => add(spec.type)}
            >
              <NodeIcon icon={spec.icon} category={spec.category} color={spec.color} size={14} />
              <span className="palette-text">
                <span className="palette-name">{spec.display_name}</span>
                <span className="palette-type">{spec.type}</span>
              </span>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
