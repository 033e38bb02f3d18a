/** The React Flow canvas, wired to the store. */
import {
  Background,
  ControlButton,
  Controls,
  MiniMap,
  Panel,
  ReactFlow,
  useReactFlow,
  useStore as useFlowStore,
  type Connection,
  type Edge,
  type FinalConnectionState,
  type IsValidConnection,
  type NodeTypes,
} from "@xyflow/react";
import { useCallback, useEffect, useMemo, useRef, useState, type DragEvent } from "react";

import { useTheme } from "../components/theme";
import { GroupView, NoteView } from "./AnnotationViews";
import { CanvasSearch, QuickAdd, type QuickAddRequest } from "./CanvasTools";
import FlowNodeView, { zoomedFar } from "./FlowNodeView";
import { FIND_BOX_CLEARANCE, READABLE_ZOOM, viewportToFit } from "./layout";
import { DRAG_MIME, PRESET_MIME, type Preset } from "./Palette";
import { wiredNodeSpot, within } from "./placement";
import { portsFor } from "./ports";
import { editorStore, useEditor, type FlowNode } from "./store";

const MINIMAP_COLORS: Record<string, string> = {
  RUNNING: "#2563eb",
  SUCCEEDED: "#16a34a",
  CACHED: "#16a34a",
  FAILED: "#dc2626",
  WAITING: "#d97706",
};

const MINIMAP_FROM = 15;
/** Graphs up to this many nodes open whole; bigger ones at a readable zoom on their top-left. */
const WHOLE_UP_TO = 40;

function minimapColor(node: FlowNode): string {
  if (node.type === "note") return "#fcd34d";
  if (node.type === "group") return "rgba(148, 163, 184, 0.25)";
  const state = editorStore.getState();
  if (state.problems[node.id]) return "#dc2626";
  return MINIMAP_COLORS[state.runStates[node.id]?.status ?? ""] ?? "#94a3b8";
}

/** Show the whole graph of the store in the canvas. */
export function useFitAll(): () => void {
  const { setViewport } = useReactFlow();
  return useCallback(() => {
    const box = document.querySelector(".canvas")?.getBoundingClientRect();
    const viewport = box && viewportToFit(editorStore.getState().nodes, box.width, box.height, 40, 0, FIND_BOX_CLEARANCE);
    if (viewport) void setViewport(viewport, { duration: 200 });
  }, [setViewport]);
}

export function Canvas() {
  const nodes = useEditor((s) => s.nodes);
  const edges = useEditor((s) => s.edges);
  const typeNames = useEditor((s) => Object.keys(s.nodeTypes).join(","));
  // A small graph fits on screen, where a minimap would only cover nodes: it is offered from
  // MINIMAP_FROM nodes on, and may be toggled either way.
  const big = useEditor((s) => s.nodes.length >= MINIMAP_FROM);
  const [minimapChoice, setMinimapChoice] = useState<boolean | null>(null);
  const minimap = minimapChoice ?? big;
  const theme = useTheme();
  const onNodesChange = useEditor((s) => s.onNodesChange);
  const onEdgesChange = useEditor((s) => s.onEdgesChange);
  const connect = useEditor((s) => s.connect);
  const checkpoint = useEditor((s) => s.checkpoint);
  const addNode = useEditor((s) => s.addNode);
  const { screenToFlowPosition, getZoom } = useReactFlow();
  // Culling pays when zoomed in; zoomed far out most nodes are on screen anyway, drawn as plain
  // boxes, and computing visibility on every frame of a pan would cost more than it saves.
  const far = useFlowStore(zoomedFar);
  const { setViewport } = useReactFlow();
  const wrapper = useRef<HTMLDivElement>(null);
  const fitAll = useFitAll();
  // Fit the loaded graph once, from the positions alone: with onlyRenderVisibleElements, React
  // Flow's own fitView measures only the nodes it happened to render. A big graph opens at a
  // readable zoom on its top-left corner (the minimap and "fit" show the rest), so opening it
  // renders only what is on screen. An empty canvas stays put.
  const onInit = useCallback(() => {
    const box = wrapper.current?.getBoundingClientRect();
    const nodes = editorStore.getState().nodes;
    // Only a big graph needs the readable zoom: a small one is shown whole, whatever its shape.
    const minZoom = nodes.length > WHOLE_UP_TO ? READABLE_ZOOM : 0.2;
    const viewport = box && viewportToFit(nodes, box.width, box.height, 40, minZoom, FIND_BOX_CLEARANCE);
    if (viewport) void setViewport(viewport);
  }, [setViewport]);

  // Every flowloom node type renders with the one memoized component; notes and groups with
  // their own.
  const nodeTypes = useMemo<NodeTypes>(
    () => ({ ...Object.fromEntries(typeNames.split(",").filter(Boolean).map((t) => [t, FlowNodeView])), note: NoteView, group: GroupView }),
    [typeNames],
  );

  const isValidConnection = useCallback<IsValidConnection>(
    (connection) => editorStore.getState().refusal(connection as Connection | Edge) === null,
    [],
  );

  const [quickAdd, setQuickAdd] = useState<QuickAddRequest | null>(null);
  const closeQuickAdd = useCallback(() => setQuickAdd(null), []);
  const search = useRef<HTMLInputElement>(null);

  // Ctrl/⌘ F finds a node on the canvas (the browser's own find sees only the nodes drawn).
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if ((event.ctrlKey || event.metaKey) && !event.shiftKey && event.key.toLowerCase() === "f") {
        event.preventDefault();
        search.current?.focus();
        search.current?.select();
      }
    };
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, []);

  const onConnectEnd = useCallback((event: MouseEvent | TouchEvent, state: FinalConnectionState) => {
    // A wire dropped on empty space: offer the node types that may take it, right there.
    if (!state.toNode && !state.toHandle && state.fromHandle?.id && state.fromNode) {
      const point = "changedTouches" in event ? event.changedTouches[0] : event;
      const box = wrapper.current?.getBoundingClientRect();
      const store = editorStore.getState();
      const node = store.nodes.find((n) => n.id === state.fromNode!.id);
      const side = state.fromHandle.type;
      const ports = node ? portsFor(store.nodeTypes[node.type!], node.data.config) : null;
      const port = (side === "source" ? ports?.outputs : ports?.inputs)?.find((p) => p.name === state.fromHandle!.id);
      if (!point || !box || !port) return;
      // React Flow ends a wire wherever the button is let go, on the canvas or past its edge:
      // the palette and the node it adds stay on the canvas, in sight.
      const drop = {
        x: within(point.clientX - box.left, 0, box.width),
        y: within(point.clientY - box.top, 0, box.height),
      };
      const spot = wiredNodeSpot(drop, side, box, getZoom());
      setQuickAdd({
        at: { x: within(drop.x, 0, box.width - 300), y: within(drop.y, 0, box.height - 320) },
        position: screenToFlowPosition({ x: box.left + spot.x, y: box.top + spot.y }),
        from: { nodeId: state.fromNode.id, handle: state.fromHandle.id, side },
        portType: port.type,
      });
      return;
    }
    // React Flow drops a refused wire silently: say why it was refused.
    if (state.isValid !== false || !state.fromHandle || !state.toHandle) return;
    const [from, to] = state.fromHandle.type === "source" ? [state.fromHandle, state.toHandle] : [state.toHandle, state.fromHandle];
    const reason = editorStore.getState().refusal({
      source: from.nodeId,
      sourceHandle: from.id ?? null,
      target: to.nodeId,
      targetHandle: to.id ?? null,
    });
    if (reason) editorStore.getState().notify("error", `Connection refused: ${reason}.`, "connect");
  }, [screenToFlowPosition, getZoom]);

  const onDrop = useCallback(
    (event: DragEvent) => {
      const at = screenToFlowPosition({ x: event.clientX, y: event.clientY });
      const preset = event.dataTransfer.getData(PRESET_MIME);
      if (preset) {
        event.preventDefault();
        const { node_type, config, name } = JSON.parse(preset) as Preset;
        addNode(node_type, at, { config, label: name });
        return;
      }
      const type = event.dataTransfer.getData(DRAG_MIME);
      if (!type) return;
      event.preventDefault();
      addNode(type, at);
    },
    [addNode, screenToFlowPosition],
  );

  const onDragOver = useCallback((event: DragEvent) => {
    if (event.dataTransfer.types.includes(DRAG_MIME) || event.dataTransfer.types.includes(PRESET_MIME)) {
      event.preventDefault();
      event.dataTransfer.dropEffect = "move";
    }
  }, []);

  return (
    <div className="canvas" ref={wrapper} onDrop={onDrop} onDragOver={onDragOver} data-testid="canvas">
      <ReactFlow<FlowNode>
        nodes={nodes}
        edges={edges}
        nodeTypes={nodeTypes}
        onNodesChange={onNodesChange}
        onEdgesChange={onEdgesChange}
        onConnect={connect}
        onConnectEnd={onConnectEnd}
        isValidConnection={isValidConnection}
        onNodeDragStart={checkpoint}
        onlyRenderVisibleElements={!far}
        deleteKeyCode={null}
        minZoom={0.05}
        maxZoom={2}
        onInit={onInit}
        proOptions={{ hideAttribution: false }}
        aria-label="Workflow canvas"
        colorMode={theme}
      >
        <Background gap={16} />
        <Panel position="top-center">
          <CanvasSearch ref={search} />
        </Panel>
        <Controls showFitView={false}>
          <ControlButton onClick={fitAll} title="Fit the whole graph" aria-label="Fit the whole graph" className="fit-all">
            <svg viewBox="0 0 32 32" aria-hidden="true"><path d="M3 11V3h8v3H6v5zm26 0h-3V6h-5V3h8zM11 29H3v-8h3v5h5zm18 0h-8v-3h5v-5h3z" /></svg>
          </ControlButton>
          <ControlButton
            onClick={() => setMinimapChoice(!minimap)}
            title={minimap ? "Hide the minimap" : "Show the minimap"}
            aria-label={minimap ? "Hide the minimap" : "Show the minimap"}
            aria-pressed={minimap}
          >
            <svg viewBox="0 0 32 32" aria-hidden="true"><path d="M4 6h24v20H4zm3 3v14h18V9zm9 7h7v5h-7z" /></svg>
          </ControlButton>
        </Controls>
        {minimap && <MiniMap<FlowNode> pannable zoomable nodeColor={minimapColor} ariaLabel="Minimap" style={{ width: 160, height: 110 }} />}
      </ReactFlow>
      {quickAdd && <QuickAdd request={quickAdd} onClose={closeQuickAdd} />}
    </div>
  );
}
