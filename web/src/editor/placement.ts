/**
 * Where nodes may go without covering one another: whether a graph opened with nodes piled up
 * (or without positions), and the free spot nearest to where a new node is wanted.
 */

export interface Placed {
  position?: { x: number; y: number } | null;
  measured?: { width?: number; height?: number };
  selected?: boolean;
  type?: string;
}

export const NODE_SIZE = { width: 220, height: 90 };
const GAP = 24;

function box(n: Placed): { x: number; y: number; w: number; h: number } {
  return {
    x: n.position?.x ?? 0,
    y: n.position?.y ?? 0,
    w: n.measured?.width ?? NODE_SIZE.width,
    h: n.measured?.height ?? NODE_SIZE.height,
  };
}

function intersects(a: ReturnType<typeof box>, b: ReturnType<typeof box>): boolean {
  return a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h;
}

/**
 * Whether some node has no position or lies mostly on top of another: such a graph (made by the
 * API or an import) is laid out when it opens. A slight overlap a person made stays.
 */
export function piledUp(nodes: Placed[]): boolean {
  if (nodes.some((n) => !n.position || !Number.isFinite(n.position.x) || !Number.isFinite(n.position.y))) return true;
  // Sorted by x, each node is compared only with those starting within one node width.
  const boxes = nodes.map(box).sort((a, b) => a.x - b.x);
  for (let i = 0; i < boxes.length; i++) {
    const a = boxes[i];
    for (let j = i + 1; j < boxes.length && boxes[j].x < a.x + a.w; j++) {
      const b = boxes[j];
      const dx = Math.min(a.x + a.w, b.x + b.w) - Math.max(a.x, b.x);
      const dy = Math.min(a.y + a.h, b.y + b.h) - Math.max(a.y, b.y);
      if (dx > 0 && dy > 0 && dx * dy > 0.5 * Math.min(a.w * a.h, b.w * b.h)) return true;
    }
  }
  return false;
}

/** The spot nearest to `wanted` (tried in rings around it) where a new node covers no other. */
export function freeSpot(nodes: Placed[], wanted: { x: number; y: number }): { x: number; y: number } {
  const boxes = nodes.map(box);
  const fits = (x: number, y: number) => {
    const candidate = { x: x - GAP / 2, y: y - GAP / 2, w: NODE_SIZE.width + GAP, h: NODE_SIZE.height + GAP };
    return !boxes.some((b) => intersects(candidate, b));
  };
  if (fits(wanted.x, wanted.y)) return wanted;
  const stepX = NODE_SIZE.width + GAP;
  const stepY = NODE_SIZE.height + GAP;
  for (let ring = 1; ring <= 12; ring++) {
    // Below first, then right, then the rest of the ring: a column of added nodes reads well.
    const spots: [number, number][] = [];
    for (let i = -ring; i <= ring; i++) {
      spots.push([i, ring], [ring, i], [i, -ring], [-ring, i]);
    }
    spots.sort((a, b) => Math.hypot(a[0] * stepX, a[1] * stepY) - Math.hypot(b[0] * stepX, b[1] * stepY));
    for (const [i, j] of spots) {
      const x = wanted.x + i * stepX;
      const y = wanted.y + j * stepY;
      if (fits(x, y)) return { x, y };
    }
  }
  return { x: wanted.x, y: wanted.y + stepY * 13 };
}

/**
 * Where a node added from the palette is wanted: beside the one node selected, to its right (so
 * nodes added one after another read left to right, as they run), else at `fallback` (the
 * middle of the canvas). Notes and groups are not followed.
 */
export function besideSelection(nodes: Placed[], fallback: { x: number; y: number }): { x: number; y: number } {
  const chosen = nodes.filter((n) => n.selected);
  const only = chosen.length === 1 ? chosen[0] : null;
  if (!only || only.type === "note" || only.type === "group" || !only.position) return fallback;
  const at = box(only);
  return { x: Math.round(at.x + at.w + 80), y: Math.round(at.y) };
}

/** The smallest box around `rect` and `node`. */
export function around(
  rect: { x: number; y: number; width: number; height: number },
  node: Placed,
): { x: number; y: number; width: number; height: number } {
  const b = box(node);
  const x = Math.min(rect.x, b.x);
  const y = Math.min(rect.y, b.y);
  return { x, y, width: Math.max(rect.x + rect.width, b.x + b.w) - x, height: Math.max(rect.y + rect.height, b.y + b.h) - y };
}

/** The room a node added at the end of a wire takes on screen at zoom 1: nodes are drawn 240 px wide. */
export const WIRED_NODE_SIZE = { width: 240, height: 100 };
/** Space kept between such a node and the edges of the canvas. */
const CANVAS_MARGIN = 16;

/** `value` kept between `low` and `high`; `low` when `high` is below it. */
export function within(value: number, low: number, high: number): number {
  return Math.max(low, Math.min(value, high));
}

/**
 * Where a node added at the end of a wire dropped at `drop` goes (its top-left corner; both in
 * pixels from the canvas's top-left corner): beside the end of the wire, on the side the wire goes
 * (right of it from an output, left of it into an input), moved no more than needed to lie whole
 * on the canvas. A wire may be dropped at the canvas's very edge or past it (React Flow ends it
 * wherever the button is let go), and a node out of sight there would not even be drawn.
 */
export function wiredNodeSpot(
  drop: { x: number; y: number },
  side: "source" | "target",
  canvas: { width: number; height: number },
  zoom: number,
): { x: number; y: number } {
  const width = WIRED_NODE_SIZE.width * zoom;
  const height = WIRED_NODE_SIZE.height * zoom;
  const x = side === "source" ? drop.x : drop.x - width;
  const y = drop.y - 40 * zoom;
  // On a canvas too small for the node, its top-left corner stays in sight.
  return {
    x: within(x, CANVAS_MARGIN, canvas.width - width - CANVAS_MARGIN),
    y: within(y, CANVAS_MARGIN, canvas.height - height - CANVAS_MARGIN),
  };
}
