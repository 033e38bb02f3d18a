import { ReactFlowProvider, useReactFlow } from "@xyflow/react";
import { useCallback, useEffect, useRef, useState } from "react";
import { Link, useLocation, useNavigate, useParams } from "react-router-dom";

import { api, errorMessage } from "../api/client";
import { FINISHED_RUN_STATUSES as FINISHED } from "../api/events";
import type { AttemptPublic, RunScope, WorkflowPublic } from "../api/types";
import { Canvas, useFitAll } from "../editor/Canvas";
import { ConfigPanel } from "../editor/ConfigPanel";
import Palette, { type Preset } from "../editor/Palette";
import { RunHistory } from "../editor/RunHistory";
import { RunInputsDialog, type TriggerFieldDef } from "../editor/RunInputsDialog";
import { forgetLookups } from "../editor/lookups";
import { OutputViewer } from "../editor/OutputViewer";
import { workflowNodes } from "../editor/annotations";
import { around, besideSelection, freeSpot, NODE_SIZE, piledUp } from "../editor/placement";
import { guardBackButton, setLeaveQuestion, type BackGuard } from "../editor/backGuard";
import { ProblemsButton } from "../editor/ProblemsList";
import { PositionSaver } from "../editor/positions";
import { cancelRun, openRun, releaseDebug, startDebugRun, startRun, stopFollowing } from "../editor/runs";
import { editorStore, useEditor } from "../editor/store";
import { Versions } from "../editor/Versions";
import { Attempts } from "./Generate";

const SHORTCUTS: [string, string][] = [
  ["Ctrl/⌘ S", "Save (a new version)"],
  ["Ctrl/⌘ Enter", "Run the workflow"],
  ["Ctrl/⌘ Z", "Undo"],
  ["Ctrl/⌘ Shift Z", "Redo (also Ctrl/⌘ Y)"],
  ["Ctrl/⌘ C / V", "Copy / paste the selected nodes"],
  ["Delete, Backspace", "Delete the selection"],
  ["Ctrl/⌘ A", "Select every node"],
  ["Shift L", "Auto-layout"],
  ["Shift N", "Add a sticky note"],
  ["Ctrl/⌘ G", "Group the selected nodes (drag the group's title to move them together)"],
  ["Ctrl/⌘ F", "Find a node on the canvas (Enter: the next match)"],
  ["B", "Toggle a breakpoint on the selected node (Run then debugs)"],
  ["F10 / F8", "Step / continue a paused debug run"],
  ["?", "Show these shortcuts"],
];

function typingIn(target: EventTarget | null): boolean {
  const element = target as HTMLElement | null;
  return !!element && (element.isContentEditable || ["INPUT", "TEXTAREA", "SELECT"].includes(element.tagName));
}

function triggerFields(): TriggerFieldDef[] {
  const fields: TriggerFieldDef[] = [];
  for (const node of editorStore.getState().nodes) {
    if (node.type !== "trigger.manual") continue;
    const list = node.data.config.fields;
    if (Array.isArray(list)) {
      for (const f of list) if (f && typeof f === "object" && typeof f.name === "string") fields.push(f as TriggerFieldDef);
    }
  }
  return fields;
}

type Tab = "node" | "runs" | "versions";

/** Where the person was going when asked about unsaved changes. */
type Leaving = { kind: "link"; to: string } | { kind: "back" } | { kind: "ask"; resolve: (leave: boolean) => void };

function EditorBody({ workflowId }: { workflowId: string }) {
  const [workflow, setWorkflow] = useState<WorkflowPublic | null>(null);
  const [loadError, setLoadError] = useState<string | null>(null);
  const [saving, setSaving] = useState(false);
  const [tab, setTab] = useState<Tab>("node");
  const [asking, setAsking] = useState<{ scope: RunScope; nodeId?: string } | null>(null);
  const [help, setHelp] = useState(false);
  const [problemsOpen, setProblemsOpen] = useState(false);
  const location = useLocation();
  // Opened right after "Describe a workflow": how many attempts it took.
  const [generated, setGenerated] = useState<AttemptPublic[] | null>(
    () => ((location.state as { generated?: AttemptPublic[] } | null)?.generated ?? null),
  );
  // Opened from a run's page (/workflows/:id?run=...): that run is shown on the canvas.
  const [runToOpen] = useState(() => new URLSearchParams(location.search).get("run"));
  const versionRef = useRef(0);
  const saverRef = useRef<PositionSaver | null>(null);
  const flow = useReactFlow();
  const fitAll = useFitAll();

  const revision = useEditor((s) => s.revision);
  const dirty = useEditor((s) => s.revision !== s.savedRevision);
  const canUndo = useEditor((s) => s.past.length > 0);
  const canRedo = useEditor((s) => s.future.length > 0);
  const run = useEditor((s) => s.run);
  const notice = useEditor((s) => s.notice);
  const graphProblems = useEditor((s) => s.graphProblems);
  const debugging = useEditor((s) => s.debugSessionId !== null);
  const breakpointCount = useEditor((s) => Object.keys(s.breakpoints).length);
  const problemCount = useEditor((s) => Object.values(s.problems).reduce((n, list) => n + list.length, 0) + s.graphProblems.length);
  // A node chosen on the canvas shows its settings, inputs and outputs, whichever tab was open
  // (after a run the Runs tab is; a click on a node left it there, showing nothing new).
  const chosen = useEditor((s) => {
    let only: string | null = null;
    for (const n of s.nodes) {
      if (!n.selected) continue;
      if (only !== null) return null;
      only = n.id;
    }
    return only;
  });
  useEffect(() => {
    if (chosen !== null) setTab("node");
  }, [chosen]);

  const show = useCallback((loaded: WorkflowPublic) => {
    setWorkflow(loaded);
    versionRef.current = loaded.version;
    const store = editorStore.getState();
    store.load(loaded.definition);
    store.setProblems(loaded.problems ?? []);
    // Made by the API or an import with nodes piled on one spot: lay it out (undoable; the
    // positions are saved in place like a drag).
    if (piledUp(workflowNodes(editorStore.getState().nodes))) {
      editorStore.getState().autoLayout();
      editorStore.getState().notify("info", "The nodes overlapped, so they were laid out (Undo puts them back).");
    }
  }, []);

  useEffect(() => {
    let live = true;
    const store = editorStore.getState();
    store.clearRun();
    store.dismissNotice();
    forgetLookups();
    Promise.all([
      api.get("/api/v1/node-types"),
      api.get("/api/v1/workflows/{workflow_id}", { path: { workflow_id: workflowId } }),
    ])
      .then(([types, loaded]) => {
        if (!live) return;
        editorStore.getState().setNodeTypes(types.items);
        show(loaded);
        if (runToOpen) {
          setTab("runs");
          void openRun(runToOpen);
        }
        window.performance?.mark?.("flowloom:editor-loaded");
      })
      .catch((error) => live && setLoadError(errorMessage(error)));
    return () => {
      live = false;
      stopFollowing();
    };
  }, [workflowId, show, runToOpen]);

  // Moves of a saved graph are saved in place, a moment after the drag ends.
  useEffect(() => {
    const saver = new PositionSaver({
      store: editorStore,
      send: async (positions, { keepalive }) => {
        await api.patch("/api/v1/workflows/{workflow_id}/positions", {
          path: { workflow_id: workflowId },
          // The version on screen: a newer save elsewhere answers 409 and the moves wait for
          // the next save instead of landing on a graph this canvas has not seen.
          body: { positions, expected_version: versionRef.current || undefined },
          keepalive,
        });
      },
      onError: (error) =>
        editorStore.getState().notify("error", `Node positions not saved (${errorMessage(error)}): they go with the next save.`, "positions"),
    });
    saverRef.current = saver;
    const onLeave = () => {
      if (saver.busy) void saver.flush(true);
    };
    window.addEventListener("pagehide", onLeave);
    return () => {
      window.removeEventListener("pagehide", onLeave);
      saver.dispose();
      void saver.flush(true);
      saverRef.current = null;
    };
  }, [workflowId]);

  // Live validation by the server's own validator, a moment after the last change.
  useEffect(() => {
    if (!workflow) return;
    const timer = window.setTimeout(async () => {
      const asked = editorStore.getState().revision;
      try {
        const result = await api.post("/api/v1/workflows/validate", {
          body: { definition: editorStore.getState().toDefinition() },
        });
        editorStore.getState().setProblems(result.problems, asked);
        editorStore.getState().resolve("validate");
      } catch (error) {
        editorStore.getState().notify("error", `Validation failed: ${errorMessage(error)}`, "validate");
      }
    }, 400);
    return () => window.clearTimeout(timer);
  }, [revision, workflow]);

  const save = useCallback(async (): Promise<boolean> => {
    setSaving(true);
    // Positions on their way land first; those still waiting go with this save.
    await saverRef.current?.settle();
    const store = editorStore.getState();
    const taken = store.takeMoved();
    const at = store.revision;
    const graph = { nodes: store.nodes, edges: store.edges };
    try {
      const saved = await api.patch("/api/v1/workflows/{workflow_id}", {
        path: { workflow_id: workflowId },
        body: { definition: store.toDefinition(), expected_version: versionRef.current },
      });
      versionRef.current = saved.version;
      setWorkflow(saved);
      editorStore.getState().markSaved(at, graph);
      editorStore.getState().setProblems(saved.problems ?? [], at);
      editorStore
        .getState()
        .notify("info", saved.valid ? `Saved as version ${saved.version}.` : `Saved version ${saved.version} as a draft: it has problems to fix before it can run.`);
      return true;
    } catch (error) {
      if (Object.keys(taken).length > 0) editorStore.getState().movesNotSaved();
      editorStore.getState().notify("error", `Not saved: ${errorMessage(error)}`, "save");
      return false;
    } finally {
      setSaving(false);
    }
  }, [workflowId]);

  const rename = useCallback(
    async (name: string) => {
      if (!workflow || !name.trim() || name === workflow.name) return;
      try {
        const saved = await api.patch("/api/v1/workflows/{workflow_id}", { path: { workflow_id: workflowId }, body: { name } });
        setWorkflow(saved);
      } catch (error) {
        editorStore.getState().notify("error", `Not renamed: ${errorMessage(error)}`);
      }
    },
    [workflow, workflowId],
  );

  const run_ = useCallback(
    async (scope: RunScope, nodeId?: string, inputs?: Record<string, unknown>, usePinned = false) => {
      const store = editorStore.getState();
      // A graph with problems cannot run: say so, and list them, rather than ask for inputs.
      // Validated now, not by the last check: a wire may have been drawn a moment ago.
      try {
        const asked = store.revision;
        const result = await api.post("/api/v1/workflows/validate", { body: { definition: store.toDefinition() } });
        store.setProblems(result.problems, asked);
      } catch {
        // Unreachable or refused: the run itself will say why.
      }
      const checked = editorStore.getState();
      const problems = Object.values(checked.problems).reduce((n, list) => n + list.length, 0) + checked.graphProblems.length;
      if (problems > 0) {
        store.notify("error", `Fix the ${problems} problem${problems > 1 ? "s" : ""} of this workflow before running it.`, "run");
        setProblemsOpen(true);
        return;
      }
      if (store.revision !== store.savedRevision && !(await save())) return;
      // With pinned data a trigger is usually pinned too: its inputs are not asked for.
      if (inputs === undefined && !usePinned && triggerFields().length > 0) {
        setAsking({ scope, nodeId });
        return;
      }
      setAsking(null);
      setTab("runs");
      const breakpoints = Object.keys(editorStore.getState().breakpoints);
      if (scope === "FULL" && breakpoints.length > 0 && !usePinned) {
        await startDebugRun(workflowId, { breakpoints, inputs });
      } else {
        await startRun(workflowId, { scope, targetNodeId: scope === "FULL" ? undefined : nodeId, inputs, usePinned });
      }
    },
    [save, workflowId],
  );

  const addAtCenter = useCallback(
    (type: string, preset?: { config: Record<string, unknown>; label: string }) => {
      const canvas = document.querySelector(".canvas")?.getBoundingClientRect();
      const center = canvas ? { x: canvas.left + canvas.width / 2, y: canvas.top + canvas.height / 2 } : { x: 400, y: 300 };
      const at = flow.screenToFlowPosition(center);
      // Right of the node selected, else centred on the middle of the canvas; moved aside from
      // the nodes already there.
      const nodes = editorStore.getState().nodes;
      const middle = { x: Math.round(at.x - 110), y: Math.round(at.y - 45) };
      const wanted = besideSelection(nodes, middle);
      const follows = wanted !== middle ? nodes.find((n) => n.selected) : undefined;
      const placed = freeSpot(nodes, wanted);
      editorStore.getState().addNode(type, placed, preset);
      // A node placed off screen is brought into view: with the whole graph while that reads at
      // 0.75 or more, else with the node it follows; at the zoom the person chose when that
      // fits, else zoomed out just enough.
      if (canvas) {
        const added = { x: placed.x, y: placed.y, width: NODE_SIZE.width, height: NODE_SIZE.height };
        const topLeft = flow.screenToFlowPosition({ x: canvas.left, y: canvas.top });
        const bottomRight = flow.screenToFlowPosition({ x: canvas.right, y: canvas.bottom });
        const shown =
          added.x >= topLeft.x && added.y >= topLeft.y &&
          added.x + added.width <= bottomRight.x && added.y + added.height <= bottomRight.y;
        if (!shown) {
          const zoom = flow.getZoom();
          const fitsAt = (r: typeof added) => Math.min((canvas.width * 0.9) / r.width, (canvas.height * 0.9) / r.height);
          const whole = nodes.reduce(around, added);
          const shownBox = fitsAt(whole) >= Math.min(0.75, zoom) ? whole : follows ? around(added, follows) : added;
          if (fitsAt(shownBox) >= zoom) {
            void flow.setCenter(shownBox.x + shownBox.width / 2, shownBox.y + shownBox.height / 2, { zoom, duration: 200 });
          } else {
            void flow.fitBounds(shownBox, { padding: 0.12, duration: 200 });
          }
        }
      }
      setTab("node");
    },
    [flow],
  );
  const addAnnotation = useCallback(
    (type: "note" | "group") => {
      const canvas = document.querySelector(".canvas")?.getBoundingClientRect();
      const center = canvas ? { x: canvas.left + canvas.width / 2, y: canvas.top + canvas.height / 2 } : { x: 400, y: 300 };
      const at = flow.screenToFlowPosition(center);
      editorStore.getState().addAnnotation(type, freeSpot(editorStore.getState().nodes, { x: Math.round(at.x - 120), y: Math.round(at.y - 70) }));
      setTab("node");
    },
    [flow],
  );
  const addPreset = useCallback(
    (preset: Preset) => addAtCenter(preset.node_type, { config: preset.config, label: preset.name }),
    [addAtCenter],
  );

  useEffect(() => {
    function onKey(event: KeyboardEvent) {
      const mod = event.ctrlKey || event.metaKey;
      const key = event.key.toLowerCase();
      const store = editorStore.getState();
      if (mod && key === "s") {
        event.preventDefault();
        void save();
        return;
      }
      if (mod && key === "enter") {
        event.preventDefault();
        void run_("FULL");
        return;
      }
      if (typingIn(event.target)) return;
      if (mod && key === "z") {
        event.preventDefault();
        if (event.shiftKey) store.redo();
        else store.undo();
      } else if (mod && key === "y") {
        event.preventDefault();
        store.redo();
      } else if (mod && key === "c") {
        const count = store.copy();
        if (count) store.notify("info", `Copied ${count} node${count > 1 ? "s" : ""}.`);
      } else if (mod && key === "v") {
        const count = store.paste();
        if (count) store.notify("info", `Pasted ${count} node${count > 1 ? "s" : ""}.`, "clipboard");
      } else if (mod && key === "a") {
        event.preventDefault();
        editorStore.setState({ nodes: store.nodes.map((n) => (n.selected ? n : { ...n, selected: true })) });
      } else if (key === "delete" || key === "backspace") {
        store.removeSelected();
      } else if (event.shiftKey && key === "n" && !mod) {
        addAnnotation("note");
      } else if (mod && key === "g") {
        event.preventDefault();
        addAnnotation("group");
      } else if (event.shiftKey && key === "l" && !mod) {
        store.autoLayout();
        window.requestAnimationFrame(fitAll);
      } else if (key === "b" && !mod && !event.shiftKey) {
        const selected = store.nodes.filter((n) => n.selected);
        if (selected.length === 1) store.toggleBreakpoint(selected[0].id);
      } else if (event.key === "F10" && store.debugSessionId) {
        event.preventDefault();
        void releaseDebug("step");
      } else if (event.key === "F8" && store.debugSessionId) {
        event.preventDefault();
        void releaseDebug("continue");
      } else if (event.key === "?") {
        setHelp((h) => !h);
      } else if (key === "escape") {
        setHelp(false);
      }
    }
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [save, run_, fitAll, addAnnotation]);

  // Leaving with unsaved changes asks first: a reload or a closed tab through the browser; a
  // link of the app, the Back button and signing out through the dialog below.
  const [leaving, setLeaving] = useState<Leaving | null>(null);
  const navigate = useNavigate();
  const guard = useRef<BackGuard | null>(null);
  useEffect(() => {
    const isDirty = () => {
      const s = editorStore.getState();
      return s.revision !== s.savedRevision;
    };
    guard.current = guardBackButton(isDirty, () => setLeaving({ kind: "back" }));
    setLeaveQuestion(() =>
      isDirty() ? new Promise<boolean>((resolve) => setLeaving({ kind: "ask", resolve })) : Promise.resolve(true),
    );
    return () => {
      guard.current?.dispose();
      guard.current = null;
      setLeaveQuestion(null);
    };
  }, []);
  useEffect(() => {
    if (dirty) guard.current?.arm();
  }, [dirty]);
  useEffect(() => {
    const onClick = (event: MouseEvent) => {
      if (event.defaultPrevented || event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
      const link = (event.target as Element | null)?.closest?.("a[href]") as HTMLAnchorElement | null;
      if (!link || link.target === "_blank" || link.origin !== window.location.origin) return;
      const to = link.pathname + link.search + link.hash;
      if (to === window.location.pathname + window.location.search + window.location.hash) return;
      const s = editorStore.getState();
      if (s.revision === s.savedRevision) return;
      // Before the router sees the click: the capture phase on window runs first.
      event.preventDefault();
      event.stopPropagation();
      setLeaving({ kind: "link", to });
    };
    window.addEventListener("click", onClick, true);
    return () => window.removeEventListener("click", onClick, true);
  }, []);

  useEffect(() => {
    const warn = (event: BeforeUnloadEvent) => {
      const s = editorStore.getState();
      if (s.revision !== s.savedRevision) event.preventDefault();
    };
    window.addEventListener("beforeunload", warn);
    return () => window.removeEventListener("beforeunload", warn);
  }, []);

  useEffect(() => {
    if (notice?.kind !== "info") return;
    const timer = window.setTimeout(() => editorStore.getState().dismissNotice(), 4000);
    return () => window.clearTimeout(timer);
  }, [notice]);

  // Where the person was going when asked, now that they chose to go.
  const go = (to: Leaving) => {
    if (to.kind === "link") navigate(to.to, { replace: guard.current?.onGuard() ?? false });
    else if (to.kind === "back") guard.current?.leave();
    else to.resolve(true);
  };

  if (loadError) {
    return (
      <p className="page error" role="alert">
        {loadError} <Link to="/">Back to your workflows</Link>
      </p>
    );
  }
  if (!workflow) return <p className="loading" role="status">Loading the workflow…</p>;

  const active = run && !FINISHED.has(run.status);
  return (
    <div className="editor">
      <div className="editor-toolbar" role="toolbar" aria-label="Workflow">
        <label className="name">
          <span className="sr-only">Workflow name</span>
          <input defaultValue={workflow.name} key={workflow.name} onBlur={(e) => void rename(e.target.value)} />
        </label>
        <span className="muted" data-testid="version">v{workflow.version}</span>
        <span className={dirty ? "unsaved" : "muted"} role="status">{dirty ? "unsaved changes" : "saved"}</span>
        <button type="button" onClick={() => void save()} disabled={saving || !dirty} title="Ctrl+S">Save</button>
        <button type="button" onClick={() => editorStore.getState().undo()} disabled={!canUndo} title="Ctrl+Z">Undo</button>
        <button type="button" onClick={() => editorStore.getState().redo()} disabled={!canRedo} title="Ctrl+Shift+Z">Redo</button>
        <button
          type="button"
          onClick={() => {
            editorStore.getState().autoLayout();
            window.requestAnimationFrame(fitAll);
          }}
          title="Shift+L"
        >
          Auto-layout
        </button>
        <button type="button" onClick={() => addAnnotation("note")} title="Shift+N: a sticky note on the canvas">+ Note</button>
        <button type="button" onClick={() => addAnnotation("group")} title="Ctrl+G: a frame around the selected nodes">+ Group</button>
        <span className="spacer" />
        {problemCount > 0 && <ProblemsButton count={problemCount} open={problemsOpen} onOpenChange={setProblemsOpen} />}
        {run && (
          <span className={`status status-${run.status.toLowerCase()}`} data-testid="run-status" data-status={run.status}>
            {run.past ? "past run" : "run"} {run.status.toLowerCase()}
          </span>
        )}
        {active && debugging && (
          <>
            <button type="button" disabled={run.status !== "WAITING"} onClick={() => void releaseDebug("step")} title="F10">Step</button>
            <button type="button" disabled={run.status !== "WAITING"} onClick={() => void releaseDebug("continue")} title="F8">Continue</button>
          </>
        )}
        {active ? (
          <button type="button" className="danger" onClick={() => void cancelRun(run.id)}>Cancel run</button>
        ) : (
          <button
            type="button"
            className="primary"
            onClick={() => void run_("FULL")}
            title={breakpointCount ? `Ctrl+Enter: a debug run, pausing before ${breakpointCount} breakpoint(s)` : "Ctrl+Enter"}
          >
            {breakpointCount ? "Debug run" : "Run"}
          </button>
        )}
        {run && !active && <button type="button" onClick={() => editorStore.getState().clearRun()}>Clear results</button>}
        <button type="button" onClick={() => setHelp(true)} aria-label="Keyboard shortcuts">?</button>
      </div>
      {notice && (
        <div className={`notice notice-${notice.kind}`} role={notice.kind === "error" ? "alert" : "status"}>
          <span>{notice.text}</span>
          <button type="button" onClick={() => editorStore.getState().dismissNotice()} aria-label="Dismiss">×</button>
        </div>
      )}
      {graphProblems.length > 0 && (
        <div className="notice notice-error" role="status">Workflow problems: {graphProblems.join("; ")}</div>
      )}
      {generated && (
        <div className="notice notice-info generated" role="status" data-testid="generated-banner">
          <details>
            <summary>
              Generated from your description in {generated.length} attempt{generated.length > 1 ? "s" : ""}
              {generated.length > 1 ? ` (${generated.length - 1} repair${generated.length > 2 ? "s" : ""})` : ""}: review it, then save or run it.
            </summary>
            <Attempts attempts={generated} caption="Generation attempts" />
          </details>
          <button type="button" onClick={() => setGenerated(null)} aria-label="Dismiss">×</button>
        </div>
      )}
      {run?.past && (
        <div className="notice notice-info" role="status" data-testid="past-run-banner">
          Showing run <code>{run.id}</code> ({run.status.toLowerCase()}) on the canvas.
        </div>
      )}
      <div className="editor-body">
        <Palette onAdd={addAtCenter} onAddPreset={addPreset} />
        <Canvas />
        <OutputViewer />
        <aside className="side-panel" aria-label="Details">
          <div role="tablist" aria-label="Side panel" className="tabs">
            {(["node", "runs", "versions"] as Tab[]).map((t) => (
              <button key={t} type="button" role="tab" aria-selected={tab === t} aria-controls={`panel-${t}`} id={`tab-${t}`} onClick={() => setTab(t)}>
                {t === "node" ? "Node" : t === "runs" ? "Runs" : "Versions"}
              </button>
            ))}
          </div>
          <div role="tabpanel" id={`panel-${tab}`} aria-labelledby={`tab-${tab}`} className="tab-panel">
            {tab === "node" && <ConfigPanel canRun={!active} onRun={(scope, nodeId, usePinned) => void run_(scope, nodeId, undefined, usePinned)} />}
            {tab === "runs" && (
              <RunHistory
                workflowId={workflowId}
                onRerun={active ? undefined : (past) => void run_(past.scope, past.target_node_id ?? undefined, past.inputs, past.used_pinned)}
              />
            )}
            {tab === "versions" && <Versions workflowId={workflowId} current={workflow.version} onRestored={show} />}
          </div>
        </aside>
      </div>
      {asking && (
        <RunInputsDialog
          fields={triggerFields()}
          onClose={() => setAsking(null)}
          onRun={(inputs) => void run_(asking.scope, asking.nodeId, inputs)}
        />
      )}
      {leaving !== null && (
        <LeaveDialog
          saving={saving}
          onStay={() => {
            setLeaving(null);
            if (leaving.kind === "back") guard.current?.arm();
            if (leaving.kind === "ask") leaving.resolve(false);
          }}
          onDiscard={() => {
            setLeaving(null);
            editorStore.getState().markSaved(editorStore.getState().revision);
            go(leaving);
          }}
          onSave={async () => {
            const saved = await save();
            setLeaving(null);
            if (saved) go(leaving);
            else if (leaving.kind === "back") guard.current?.arm();
            else if (leaving.kind === "ask") leaving.resolve(false);
          }}
        />
      )}
      {help && (
        <div className="dialog-backdrop" onClick={() => setHelp(false)}>
          <div role="dialog" aria-modal="true" aria-labelledby="help-title" className="dialog" onClick={(e) => e.stopPropagation()}>
            <h2 id="help-title">Keyboard shortcuts</h2>
            <dl className="shortcuts">
              {SHORTCUTS.map(([keys, what]) => (
                <div key={keys}><dt><kbd>{keys}</kbd></dt><dd>{what}</dd></div>
              ))}
            </dl>
            <p className="muted">Palette: Tab to a node type and press Enter to add it in the middle of the canvas. Drop a wire on empty space to add a node wired to it.</p>
            <button type="button" autoFocus onClick={() => setHelp(false)}>Close</button>
          </div>
        </div>
      )}
    </div>
  );
}

function LeaveDialog({ saving, onStay, onDiscard, onSave }: { saving: boolean; onStay: () => void; onDiscard: () => void; onSave: () => void }) {
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => event.key === "Escape" && onStay();
    window.addEventListener("keydown", onKey);
    return () => window.removeEventListener("keydown", onKey);
  }, [onStay]);
  return (
    <div className="dialog-backdrop" onClick={onStay}>
      <div role="alertdialog" aria-modal="true" aria-labelledby="leave-title" aria-describedby="leave-text" className="dialog" onClick={(e) => e.stopPropagation()}>
        <h2 id="leave-title">Leave with unsaved changes?</h2>
        <p id="leave-text">This workflow has changes that are not saved yet. Save them as a new version before you go?</p>
        <div className="button-row dialog-actions">
          <button type="button" className="primary" disabled={saving} onClick={onSave} autoFocus>Save and leave</button>
          <button type="button" className="danger" onClick={onDiscard}>Leave without saving</button>
          <button type="button" onClick={onStay}>Stay</button>
        </div>
      </div>
    </div>
  );
}

export function EditorPage() {
  const { workflowId } = useParams();
  return (
    <ReactFlowProvider>
      <EditorBody key={workflowId} workflowId={workflowId!} />
    </ReactFlowProvider>
  );
}
