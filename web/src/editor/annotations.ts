/**
 * Sticky notes and groups: saved in the definition's `annotations` (the engine never reads
 * them), held on the canvas as React Flow nodes of types "note" and "group" beside the
 * workflow's nodes, so that selecting, dragging, deleting, copying, undo and saving positions
 * in place work for them as for nodes.
 */
import type { FlowNode } from "./store";

export type AnnotationType = "note" | "group";
export const ANNOTATION_COLORS = ["yellow", "blue", "green", "pink", "purple", "gray"] as const;
export type AnnotationColor = (typeof ANNOTATION_COLORS)[number];

/** What the definition holds of one annotation (flowloom/graph/definition.py's Annotation). */
export interface Annotation {
  id: string;
  type: AnnotationType;
  position: { x: number; y: number };
  width: number;
  height: number;
  data: { text: string; label: string; color: AnnotationColor };
}

export const NOTE_SIZE = { width: 240, height: 140 };
const GROUP_PADDING = 40;
const MIN_SIDE = 40;

export function isAnnotation(node: { type?: string }): boolean {
  return node.type === "note" || node.type === "group";
}

/** The workflow's own nodes (what runs), without notes and groups. */
export function workflowNodes<T extends { type?: string }>(nodes: T[]): T[] {
  return nodes.some(isAnnotation) ? nodes.filter((n) => !isAnnotation(n)) : nodes;
}

function color(value: unknown): AnnotationColor {
  return ANNOTATION_COLORS.includes(value as AnnotationColor) ? (value as AnnotationColor) : "yellow";
}

function side(value: unknown, fallback: number): number {
  return typeof value === "number" && Number.isFinite(value) ? Math.max(MIN_SIDE, value) : fallback;
}

/** The canvas nodes of a definition's annotations: groups behind everything. */
export function annotationNodes(raw: unknown): FlowNode[] {
  if (!Array.isArray(raw)) return [];
  return raw
    .filter((a): a is Record<string, unknown> => typeof a === "object" && a !== null && (a.type === "note" || a.type === "group"))
    .map((a) => {
      const data = (typeof a.data === "object" && a.data !== null ? a.data : {}) as Record<string, unknown>;
      const type = a.type as AnnotationType;
      return annotationNode({
        id: String(a.id),
        type,
        position: (a.position ?? { x: 0, y: 0 }) as { x: number; y: number },
        width: side(a.width, NOTE_SIZE.width),
        height: side(a.height, NOTE_SIZE.height),
        data: { text: String(data.text ?? ""), label: String(data.label ?? ""), color: color(data.color) },
      });
    });
}

export function annotationNode(a: Annotation): FlowNode {
  return {
    id: a.id,
    type: a.type,
    position: a.position,
    width: a.width,
    height: a.height,
    data: { ...a.data, config: {} },
    // Groups sit behind the nodes they hold, and only their title takes the pointer.
    ...(a.type === "group" ? { zIndex: -1, className: "annotation-group", dragHandle: ".group-title" } : { className: "annotation-note" }),
  } as FlowNode;
}

/** What the definition saves of an annotation's canvas node. */
export function toAnnotation(node: FlowNode): Annotation {
  const data = node.data as Record<string, unknown>;
  return {
    id: node.id,
    type: node.type as AnnotationType,
    position: { x: node.position.x, y: node.position.y },
    width: Math.round(side(node.width ?? node.measured?.width, NOTE_SIZE.width)),
    height: Math.round(side(node.height ?? node.measured?.height, NOTE_SIZE.height)),
    data: { text: String(data.text ?? ""), label: String(data.label ?? ""), color: color(data.color) },
  };
}

interface Box {
  x: number;
  y: number;
  width: number;
  height: number;
}

function boxOf(node: FlowNode): Box {
  return {
    x: node.position.x,
    y: node.position.y,
    width: node.width ?? node.measured?.width ?? 220,
    height: node.height ?? node.measured?.height ?? 90,
  };
}

/** A group's frame around `nodes` (with room for its title), or null when there are none. */
export function frameAround(nodes: FlowNode[]): Box | null {
  if (nodes.length === 0) return null;
  const boxes = nodes.map(boxOf);
  const left = Math.min(...boxes.map((b) => b.x)) - GROUP_PADDING;
  const top = Math.min(...boxes.map((b) => b.y)) - GROUP_PADDING - 20;
  const right = Math.max(...boxes.map((b) => b.x + b.width)) + GROUP_PADDING;
  const bottom = Math.max(...boxes.map((b) => b.y + b.height)) + GROUP_PADDING;
  return { x: Math.round(left), y: Math.round(top), width: Math.round(right - left), height: Math.round(bottom - top) };
}

/** The ids of the nodes (and notes) lying wholly inside the group `group`. */
export function insideGroup(group: FlowNode, nodes: FlowNode[]): string[] {
  const frame = boxOf(group);
  return nodes
    .filter((n) => n.id !== group.id && n.type !== "group")
    .filter((n) => {
      const b = boxOf(n);
      return b.x >= frame.x && b.y >= frame.y && b.x + b.width <= frame.x + frame.width && b.y + b.height <= frame.y + frame.height;
    })
    .map((n) => n.id);
}
