/**
 * Sticky notes and groups as drawn on the canvas: a note shows its text (double-click to write
 * it), a group is a tinted frame with a title (dragging the title takes what is inside along);
 * both resize from their edges when selected. Their settings panel (AnnotationPanel) edits
 * the same text and colour from the keyboard.
 */
import { NodeResizer, type NodeProps } from "@xyflow/react";
import { memo, useEffect, useRef, useState } from "react";

import { ANNOTATION_COLORS, type AnnotationColor } from "./annotations";
import "./annotations.css";
import { editorStore, useEditor, type FlowNode } from "./store";

function dataOf(node: { data: Record<string, unknown> }): { text: string; label: string; color: AnnotationColor } {
  const d = node.data;
  return { text: String(d.text ?? ""), label: String(d.label ?? ""), color: (d.color as AnnotationColor) ?? "yellow" };
}

function Resizer({ selected, minWidth, minHeight }: { selected: boolean; minWidth: number; minHeight: number }) {
  return (
    <NodeResizer
      isVisible={selected}
      minWidth={minWidth}
      minHeight={minHeight}
      onResizeStart={() => editorStore.getState().checkpoint()}
      onResizeEnd={() => editorStore.getState().resized()}
    />
  );
}

function NoteViewInner({ id, data, selected }: NodeProps<FlowNode>) {
  const { text, color } = dataOf({ data });
  const [editing, setEditing] = useState(false);
  const box = useRef<HTMLTextAreaElement>(null);
  useEffect(() => {
    if (editing) box.current?.focus();
  }, [editing]);
  return (
    <div className={`sticky-note note-${color}`} data-testid={`note-${id}`} onDoubleClick={() => setEditing(true)}>
      <Resizer selected={Boolean(selected)} minWidth={80} minHeight={60} />
      {editing ? (
        <textarea
          ref={box}
          className="nodrag nowheel note-text"
          aria-label="Note text"
          value={text}
          onChange={(e) => editorStore.getState().updateAnnotation(id, { text: e.target.value })}
          onBlur={() => setEditing(false)}
          onKeyDown={(e) => {
            if (e.key === "Escape") setEditing(false);
          }}
        />
      ) : (
        <div className="note-text" title="Double-click to write">
          {text || <span className="note-placeholder">Double-click to write a note</span>}
        </div>
      )}
    </div>
  );
}

function GroupViewInner({ id, data, selected }: NodeProps<FlowNode>) {
  const { label, color } = dataOf({ data });
  const [editing, setEditing] = useState(false);
  return (
    <div className={`canvas-group group-${color}`} data-testid={`group-${id}`}>
      <Resizer selected={Boolean(selected)} minWidth={120} minHeight={80} />
      <div
        className="group-title"
        title="Drag to move the group and what is inside it; double-click to rename"
        onPointerDown={() => editorStore.getState().selectGroup(id)}
        onDoubleClick={() => setEditing(true)}
      >
        {editing ? (
          <input
            className="nodrag"
            aria-label="Group title"
            autoFocus
            value={label}
            onChange={(e) => editorStore.getState().updateAnnotation(id, { label: e.target.value })}
            onBlur={() => setEditing(false)}
            onKeyDown={(e) => {
              if (e.key === "Enter" || e.key === "Escape") setEditing(false);
            }}
          />
        ) : (
          label || "Group"
        )}
      </div>
    </div>
  );
}

export const NoteView = memo(NoteViewInner);
export const GroupView = memo(GroupViewInner);

/** The side panel of a selected note or group: its text (or title) and colour. */
export function AnnotationPanel({ nodeId }: { nodeId: string }) {
  const node = useEditor((s) => s.nodes.find((n) => n.id === nodeId));
  if (!node) return null;
  const { text, label, color } = dataOf(node);
  const note = node.type === "note";
  const update = editorStore.getState().updateAnnotation;
  return (
    <div className="config-panel" aria-label={`Settings of ${node.id}`}>
      <div className="panel-head">
        <div>
          <h2>{note ? "Sticky note" : label || "Group"}</h2>
          <div className="muted small">
            {note ? "A note on the canvas" : "A frame around nodes"}: saved with the workflow, never run · id <code>{node.id}</code>
          </div>
        </div>
      </div>
      {note ? (
        <div className="field">
          <label htmlFor="annotation-text">Text</label>
          <textarea id="annotation-text" rows={6} value={text} onChange={(e) => update(node.id, { text: e.target.value })} />
        </div>
      ) : (
        <div className="field">
          <label htmlFor="annotation-label">Title</label>
          <input id="annotation-label" value={label} onChange={(e) => update(node.id, { label: e.target.value })} />
          <div className="help">Drag the group by its title: the nodes inside move with it.</div>
        </div>
      )}
      <fieldset className="color-choice">
        <legend>Colour</legend>
        {ANNOTATION_COLORS.map((c) => (
          <label key={c} className={`swatch note-${c}`} title={c}>
            <input type="radio" name="annotation-color" value={c} checked={color === c} onChange={() => update(node.id, { color: c })} />
            <span className="sr-only">{c}</span>
          </label>
        ))}
      </fieldset>
    </div>
  );
}
