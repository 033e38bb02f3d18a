/**
 * Ports of a node as its config stands, and which ports may be wired together.
 *
 * The node-type document lists the ports of the *default* config. Types marked `dynamic_ports`
 * grow ports from their config (a template's variables become inputs, a manual trigger's fields
 * become outputs...): the rules below mirror each built-in type's `inputs()` / `outputs()` in
 * flowloom/nodes, so the canvas shows the ports the server's validator will check. A type the
 * rules do not know gets one input per name in its `variables`, plus the ports of its document.
 */
import type { NodeTypePublic, PortPublic, PortType } from "../api/types";

type Config = Record<string, unknown>;

function port(name: string, type: PortType, extra: Partial<PortPublic> = {}): PortPublic {
  return { name, type, required: true, is_list: false, description: "", ...extra };
}

function names(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === "string" && v !== "") : [];
}

function records(value: unknown): Config[] {
  return Array.isArray(value)
    ? value.filter((v): v is Config => typeof v === "object" && v !== null && !Array.isArray(v))
    : [];
}

const PORT_TYPES: ReadonlySet<string> = new Set([
  "any", "string", "number", "integer", "boolean", "object", "list", "image",
]);

type Rule = (spec: NodeTypePublic, config: Config) => { inputs: PortPublic[]; outputs: PortPublic[] };

const RULES: Record<string, Rule> = {
  "text.template": (spec, config) => ({
    inputs: names(config.variables).map((n) => port(n, "any")),
    outputs: spec.outputs,
  }),
  "ai.llm": (spec, config) => ({
    inputs: [
      ...names(config.variables).map((n) => port(n, "any")),
      ...spec.inputs.filter((p) => p.name === "images"),
    ],
    outputs: [
      port("text", "string"),
      ...(config.response_schema != null ? [port("json", "any")] : []),
      ...spec.outputs.filter((p) => p.name === "usage"),
    ],
  }),
  "trigger.manual": (_spec, config) => ({
    inputs: [],
    outputs: records(config.fields)
      .filter((f) => typeof f.name === "string" && f.name !== "")
      .map((f) =>
        port(String(f.name), PORT_TYPES.has(String(f.type)) ? (String(f.type) as PortType) : "string", {
          description: typeof f.description === "string" ? f.description : "",
        }),
      ),
  }),
  "flow.switch": (spec, config) => ({
    inputs: spec.inputs,
    outputs: [
      ...records(config.cases)
        .filter((c) => typeof c.name === "string" && c.name !== "")
        .map((c) => port(String(c.name), "any")),
      port("default", "any"),
    ],
  }),
  "flow.merge": (spec, config) => ({
    inputs: spec.inputs,
    outputs: [port("values", config.mode === "first" ? "any" : "list")],
  }),
  "workflow.call": (spec, config) => ({
    inputs: [
      ...spec.inputs.filter((p) => p.name === "inputs"),
      ...(config.for_each === true ? [port("items", "list")] : []),
    ],
    outputs: [port("outputs", config.for_each === true ? "list" : "object")],
  }),
};

/**
 * Any other dynamic type: the common convention of flowloom's nodes (templates, `ai.agent`,
 * `mcp.tool`) is that each name in `variables` becomes an any-typed input port.
 */
const variablesRule: Rule = (spec, config) => {
  const variables = names(config.variables);
  return {
    inputs: [
      ...variables.map((n) => port(n, "any")),
      ...spec.inputs.filter((p) => !variables.includes(p.name)),
    ],
    outputs: spec.outputs,
  };
};

export interface NodePorts {
  inputs: PortPublic[];
  outputs: PortPublic[];
}

/** The ports of a node of type `spec` with `config`. */
export function portsFor(spec: NodeTypePublic | undefined, config: Config | undefined): NodePorts {
  if (!spec) return { inputs: [], outputs: [] };
  const rule = spec.dynamic_ports ? (RULES[spec.type] ?? variablesRule) : undefined;
  return rule ? rule(spec, config ?? {}) : { inputs: spec.inputs, outputs: spec.outputs };
}

const WIDENS: ReadonlySet<string> = new Set(["integer>number", "image>object"]);

/** Whether an output of type `source` may feed an input of type `target` (graph/ports.py). */
export function compatible(source: PortType, target: PortType): boolean {
  if (source === "any" || target === "any" || source === target) return true;
  return WIDENS.has(`${source}>${target}`);
}

export type PortSide = "source" | "target";

/**
 * The port of a node (`ports`) that a wire from a port of type `type` may join: an input when
 * the wire comes from an output (`from` "source"), an output when it comes from an input. The
 * same type first, then a required port, then any that takes it; null when none does.
 */
export function matchingPort(ports: NodePorts, type: PortType, from: PortSide): PortPublic | null {
  const candidates = from === "source" ? ports.inputs.filter((p) => compatible(type, p.type)) : ports.outputs.filter((p) => compatible(p.type, type));
  const rank = (p: PortPublic) => (p.type === type ? 0 : 2) + (p.required ? 0 : 1);
  return [...candidates].sort((a, b) => rank(a) - rank(b))[0] ?? null;
}
