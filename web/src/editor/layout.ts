/**
 * Auto-layout: a layered layout, left to right. Each node goes in the layer after its deepest
 * parent (longest path from a source); within a layer, nodes are ordered by the mean position
 * of their parents, which keeps most edges from crossing. O(V + E) plus one sort per layer.
 */

export interface LayoutNode {
  id: string;
  width?: number;
  height?: number;
}

export interface LayoutEdge {
  source: string;
  target: string;
}

export const LAYER_GAP_X = 300;
export const ROW_GAP_Y = 40;
const DEFAULT_HEIGHT = 90;

export function layeredLayout(
  nodes: LayoutNode[],
  edges: LayoutEdge[],
): Map<string, { x: number; y: number }> {
  const ids = new Set(nodes.map((n) => n.id));
  const parents = new Map<string, string[]>();
  const children = new Map<string, string[]>();
  const indegree = new Map<string, number>();
  for (const n of nodes) {
    parents.set(n.id, []);
    children.set(n.id, []);
    indegree.set(n.id, 0);
  }
  for (const e of edges) {
    if (!ids.has(e.source) || !ids.has(e.target) || e.source === e.target) continue;
    children.get(e.source)!.push(e.target);
    parents.get(e.target)!.push(e.source);
    indegree.set(e.target, indegree.get(e.target)! + 1);
  }
  // Kahn's order; nodes left over sit on a cycle and go after everything else.
  const layer = new Map<string, number>();
  const queue = nodes.filter((n) => indegree.get(n.id) === 0).map((n) => n.id);
  for (const id of queue) layer.set(id, 0);
  for (let i = 0; i < queue.length; i++) {
    const id = queue[i];
    for (const child of children.get(id)!) {
      layer.set(child, Math.max(layer.get(child) ?? 0, layer.get(id)! + 1));
      const left = indegree.get(child)! - 1;
      indegree.set(child, left);
      if (left === 0) queue.push(child);
    }
  }
  const deepest = Math.max(0, ...layer.values());
  for (const n of nodes) if (!layer.has(n.id)) layer.set(n.id, deepest + 1);

  const layers: string[][] = [];
  for (const n of nodes) {
    const at = layer.get(n.id)!;
    (layers[at] ??= []).push(n.id);
  }
  const heights = new Map(nodes.map((n) => [n.id, n.height ?? DEFAULT_HEIGHT]));
  const rank = new Map<string, number>();
  const positions = new Map<string, { x: number; y: number }>();
  layers.forEach((members, index) => {
    if (!members) return;
    const keyed = members.map((id, order) => {
      const ranks = parents.get(id)!.map((p) => rank.get(p)).filter((r): r is number => r !== undefined);
      const key = ranks.length ? ranks.reduce((a, b) => a + b, 0) / ranks.length : order;
      return { id, key, order };
    });
    keyed.sort((a, b) => a.key - b.key || a.order - b.order);
    let y = 0;
    keyed.forEach(({ id }, position) => {
      rank.set(id, position);
      positions.set(id, { x: index * LAYER_GAP_X, y });
      y += heights.get(id)! + ROW_GAP_Y;
    });
  });
  return positions;
}

const FALLBACK_SIZE = { width: 220, height: 90 };

/** Below this zoom node text is unreadable: a graph opens no further out than this. */
export const READABLE_ZOOM = 0.5;

/** Room kept above the graph for the "find on canvas" box floating at the top of the canvas. */
export const FIND_BOX_CLEARANCE = 64;

/**
 * The viewport that shows every node (at most at zoom 1), or null for an empty graph, with
 * `padding` around it and `top` above it. With `minZoom`, a graph too big to fit at that zoom
 * is shown from its top-left corner instead.
 */
export function viewportToFit(
  nodes: Array<{ position: { x: number; y: number }; measured?: { width?: number; height?: number } }>,
  width: number,
  height: number,
  padding = 40,
  minZoom = 0,
  top = padding,
): { x: number; y: number; zoom: number } | null {
  if (nodes.length === 0 || width <= 0 || height <= 0) return null;
  let left = Infinity, upper = Infinity, right = -Infinity, bottom = -Infinity;
  for (const n of nodes) {
    const w = n.measured?.width ?? FALLBACK_SIZE.width;
    const h = n.measured?.height ?? FALLBACK_SIZE.height;
    left = Math.min(left, n.position.x);
    upper = Math.min(upper, n.position.y);
    right = Math.max(right, n.position.x + w);
    bottom = Math.max(bottom, n.position.y + h);
  }
  const room = Math.max(1, height - top - padding);
  const zoom = Math.max(0.05, Math.min(1, (width - 2 * padding) / (right - left), room / (bottom - upper)));
  if (zoom < minZoom) {
    return { zoom: minZoom, x: padding - left * minZoom, y: top - upper * minZoom };
  }
  return {
    zoom,
    x: (width - (right - left) * zoom) / 2 - left * zoom,
    y: top + (room - (bottom - upper) * zoom) / 2 - upper * zoom,
  };
}
