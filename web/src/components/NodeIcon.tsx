/**
 * The icon of a node type: a name of the set below, or the path data of a 24x24 SVG icon that
 * a plugin brings itself; anything else (or nothing) falls back to its category's icon.
 */
import { memo } from "react";

/** Stroked 24x24 paths, drawn for this set. */
export const ICONS: Record<string, string> = {
  play: "M7 4.5v15l12-7.5z",
  agent: "M5 9a3 3 0 0 1 3-3h8a3 3 0 0 1 3 3v6a3 3 0 0 1-3 3H8a3 3 0 0 1-3-3zM12 3v3M9 12h.01M15 12h.01M2 12v2M22 12v2",
  sparkles: "M12 3l1.8 5.2L19 10l-5.2 1.8L12 17l-1.8-5.2L5 10l5.2-1.8zM19 15l.8 2.2L22 18l-2.2.8L19 21l-.8-2.2L16 18l2.2-.8z",
  braces: "M8 3H7a2 2 0 0 0-2 2v4l-2 3 2 3v4a2 2 0 0 0 2 2h1M16 3h1a2 2 0 0 1 2 2v4l2 3-2 3v4a2 2 0 0 1-2 2h-1",
  branch: "M6 3v12M6 15a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM18 9a3 3 0 1 0 0-6 3 3 0 0 0 0 6zM18 9c0 6-12 3-12 9",
  switch: "M4 12h6M10 12l4-6h6M10 12h10M10 12l4 6h6",
  merge: "M4 6h5l5 6h6M4 18h5l5-6M17 9l3 3-3 3",
  clock: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM12 7v5l3 2",
  globe: "M12 3a9 9 0 1 0 0 18 9 9 0 0 0 0-18zM3 12h18M12 3c3 3.5 3 14.5 0 18M12 3c-3 3.5-3 14.5 0 18",
  hand: "M8 13V5.5a1.5 1.5 0 0 1 3 0V11M11 10.5v-6a1.5 1.5 0 0 1 3 0V11M14 10.5v-4a1.5 1.5 0 0 1 3 0V15a6 6 0 0 1-6 6h-1a6 6 0 0 1-5-2.7L3 14.5a1.5 1.5 0 0 1 2.5-1.7L8 16",
  image: "M4 5h16v14H4zM4 16l5-5 4 4 2-2 5 5M15.5 8.5h.01",
  crop: "M6 2v14a2 2 0 0 0 2 2h14M2 6h14a2 2 0 0 1 2 2v14",
  resize: "M15 3h6v6M9 21H3v-6M21 3l-7 7M3 21l7-7",
  convert: "M4 12a8 8 0 0 1 14-5.3L20 9M20 4v5h-5M20 12a8 8 0 0 1-14 5.3L4 15M4 20v-5h5",
  sort: "M4 6h10M4 12h7M4 18h4M17 5v14M14 16l3 3 3-3",
  plug: "M9 2v5M15 2v5M6 7h12v4a6 6 0 0 1-12 0zM12 17v5",
  "memory-read": "M4 6c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3zM4 6v12c0 1.7 3.6 3 8 3M20 6v5M14 17h8M19 14l3 3-3 3",
  "memory-write": "M4 6c0-1.7 3.6-3 8-3s8 1.3 8 3-3.6 3-8 3-8-1.3-8-3zM4 6v12c0 1.7 3.6 3 8 3M20 6v5M17 14l5 5-2 2-5-5v-2z",
  text: "M5 5h14M12 5v15M9 20h6",
  template: "M4 6h16M4 12h6M4 18h6M14 12c-1 0-1.5.5-1.5 1.5v1L12 15l.5.5v1c0 1 .5 1.5 1.5 1.5M18 12c1 0 1.5.5 1.5 1.5v1L20 15l-.5.5v1c0 1-.5 1.5-1.5 1.5",
  join: "M3 7h6M3 17h6M9 7c3 0 3 5 6 5M9 17c3 0 3-5 6-5M15 12h6",
  scissors: "M6 3a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM6 15a3 3 0 1 0 0 6 3 3 0 0 0 0-6zM20 4L8.1 15.9M14.5 14.5L20 20M8.1 8.1L12 12",
  workflow: "M3 4h6v5H3zM15 15h6v5h-6zM6 9v4a2 2 0 0 0 2 2h7",
  wrench: "M14.7 6.3a4 4 0 0 0-5.4 5.4L3 18l3 3 6.3-6.3a4 4 0 0 0 5.4-5.4l-2.6 2.6-2.4-.6-.6-2.4z",
  box: "M12 3l8 4.5v9L12 21l-8-4.5v-9zM4 7.5l8 4.5 8-4.5M12 12v9",
};

const CATEGORY_ICONS: Record<string, string> = {
  TRIGGER: "play",
  AI_AGENT: "sparkles",
  EXTERNAL_ACTION: "globe",
  ACTION: "box",
  FLOW: "branch",
  HUMAN_IN_THE_LOOP: "hand",
  TOOL: "wrench",
  MEMORY: "memory-read",
};

const PATH_DATA = /^[Mm][\d\s.,+\-MmLlHhVvCcSsQqTtAaZz]+$/;

/** The path data an icon name (or raw path data) stands for. */
export function iconPath(icon: string | undefined, category: string | undefined): string {
  if (icon && ICONS[icon]) return ICONS[icon];
  if (icon && PATH_DATA.test(icon)) return icon;
  return ICONS[CATEGORY_ICONS[category ?? ""] ?? "box"];
}

function NodeIcon({ icon, category, color, size = 18 }: { icon?: string; category?: string; color?: string; size?: number }) {
  return (
    <span className="node-icon" style={color ? { background: color } : undefined} aria-hidden="true">
      <svg viewBox="0 0 24 24" width={size} height={size} fill="none" stroke="currentColor" strokeWidth={2} strokeLinecap="round" strokeLinejoin="round">
        <path d={iconPath(icon, category)} />
      </svg>
    </span>
  );
}

export default memo(NodeIcon);
