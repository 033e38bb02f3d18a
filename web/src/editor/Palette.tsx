/** The node types, grouped by category and searchable; drag one onto the canvas, or press Enter. */
import { memo, useEffect, useMemo, useState } from "react";

import { api, errorMessage } from "../api/client";
import type { components } from "../api/schema.gen";
import type { NodeTypePublic } from "../api/types";
import NodeIcon from "../components/NodeIcon";
import { richPieces } from "../components/RichText";
import { editorStore, useEditor } from "./store";

export const DRAG_MIME = "application/x-flowloom-node-type";
export const PRESET_MIME = "application/x-flowloom-preset";

export type Preset = components["schemas"]["NodeTemplatePublic"];

const presetListeners = new Set<() => void>();
/** Tell the palette that the presets changed (one was saved). */
export function presetsChanged(): void {
  for (const listener of presetListeners) listener();
}

function usePresets(): Preset[] {
  const [presets, setPresets] = useState<Preset[]>([]);
  useEffect(() => {
    let live = true;
    const load = () =>
      api
        .get("/api/v1/node-templates", { query: { limit: 100 } })
        .then((page) => live && setPresets(page.items))
        .catch((error) => editorStore.getState().notify("error", `Presets: ${errorMessage(error)}`));
    void load();
    presetListeners.add(load);
    return () => {
      live = false;
      presetListeners.delete(load);
    };
  }, []);
  return presets;
}

const CATEGORY_ORDER = ["TRIGGER", "AI_AGENT", "ACTION", "FLOW", "HUMAN_IN_THE_LOOP", "EXTERNAL_ACTION", "TOOL", "MEMORY"];
const CATEGORY_LABEL: Record<string, string> = {
  TRIGGER: "Triggers",
  AI_AGENT: "AI",
  ACTION: "Actions",
  FLOW: "Flow",
  HUMAN_IN_THE_LOOP: "Human in the loop",
  EXTERNAL_ACTION: "External",
  TOOL: "Tools",
  MEMORY: "Memory",
};

/** A description without its code marks, for a tooltip. */
function plain(text: string): string {
  return richPieces(text).map((p) => p.text).join("");
}

function Palette({ onAdd, onAddPreset }: { onAdd: (type: string) => void; onAddPreset: (preset: Preset) => void }) {
  const nodeTypes = useEditor((s) => s.nodeTypes);
  const presets = usePresets();
  const [query, setQuery] = useState("");
  const term = query.trim().toLowerCase();
  const shownPresets = presets.filter(
    (p) => !term || p.name.toLowerCase().includes(term) || p.node_type.includes(term),
  );
  const groups = useMemo(() => {
    const term = query.trim().toLowerCase();
    const found = Object.values(nodeTypes).filter(
      (t) =>
        !term || t.type.includes(term) || t.display_name.toLowerCase().includes(term) || t.description.toLowerCase().includes(term),
    );
    const byCategory = new Map<string, NodeTypePublic[]>();
    for (const spec of found) {
      const list = byCategory.get(spec.category) ?? [];
      list.push(spec);
      byCategory.set(spec.category, list);
    }
    for (const list of byCategory.values()) list.sort((a, b) => a.display_name.localeCompare(b.display_name));
    return [...byCategory.entries()].sort(
      ([a], [b]) => (CATEGORY_ORDER.indexOf(a) + 99) % 99 - (CATEGORY_ORDER.indexOf(b) + 99) % 99 || a.localeCompare(b),
    );
  }, [nodeTypes, query]);

  return (
    <aside className="palette" aria-label="Node palette">
      <label className="palette-search">
        <span className="sr-only">Search node types</span>
        <input type="search" placeholder="Search nodes…" value={query} onChange={(e) => setQuery(e.target.value)} />
      </label>
      {groups.length === 0 && shownPresets.length === 0 && <p className="muted">No node type matches.</p>}
      {shownPresets.length > 0 && (
        <section aria-label="Presets">
          <h2>Presets</h2>
          <ul>
            {shownPresets.map((preset) => (
              <li key={preset.id}>
                <button
                  type="button"
                  className="palette-item preset"
                  draggable
                  data-preset-id={preset.id}
                  title={`${preset.node_type}${preset.description ? `: ${preset.description}` : ""}\nDrag onto the canvas, or press Enter to add.`}
                  onDragStart={(event) => {
                    event.dataTransfer.setData(PRESET_MIME, JSON.stringify(preset));
                    event.dataTransfer.effectAllowed = "move";
                  }}
                  onClick={() => onAddPreset(preset)}
                >
                  {preset.name}
                </button>
              </li>
            ))}
          </ul>
        </section>
      )}
      {groups.map(([category, specs]) => (
        <section key={category} aria-label={CATEGORY_LABEL[category] ?? category}>
          <h2>{CATEGORY_LABEL[category] ?? category}</h2>
          <ul>
            {specs.map((spec) => (
              <li key={spec.type}>
                <button
                  type="button"
                  className="palette-item"
                  draggable
                  data-node-type={spec.type}
                  title={`${plain(spec.description)}\nDrag onto the canvas, or press Enter to add.`}
                  onDragStart={(event) => {
                    event.dataTransfer.setData(DRAG_MIME, spec.type);
                    event.dataTransfer.effectAllowed = "move";
                  }}
                  onClick={() => onAdd(spec.type)}
                >
                  <NodeIcon icon={spec.icon} category={spec.category} color={spec.color} size={14} />
                  <span className="palette-text">
                    <span className="palette-name">{spec.display_name}</span>
                    <span className="palette-type">{spec.type}</span>
                  </span>
                </button>
              </li>
            ))}
          </ul>
        </section>
      ))}
    </aside>
  );
}

export default memo(Palette);
