/** Finding things for the canvas: its nodes by a few letters, and the node types a dragged wire may join. */
import type { JsonSchema, NodeTypePublic, PortType } from "../api/types";
import { matchingPort, portsFor, type PortSide } from "./ports";
import { defaultsFor, fieldsFor } from "./schemaForm";
import type { FlowNode } from "./store";

/**
 * The nodes whose label, id, type or type name contain `query` (any case), best first: a
 * label that starts with it, then one that contains it, then the rest.
 */
export function findNodes(nodes: FlowNode[], nodeTypes: Record<string, NodeTypePublic>, query: string): FlowNode[] {
  const term = query.trim().toLowerCase();
  if (!term) return [];
  const scored: [number, number, FlowNode][] = [];
  nodes.forEach((node, index) => {
    const label = String(node.data.label ?? "").toLowerCase();
    const spec = nodeTypes[node.type ?? ""];
    const others = [node.id, node.type ?? "", spec?.display_name ?? ""].map((t) => t.toLowerCase());
    const score = label.startsWith(term) ? 0 : label.includes(term) ? 1 : others.some((t) => t.includes(term)) ? 2 : -1;
    if (score >= 0) scored.push([score, index, node]);
  });
  return scored.sort((a, b) => a[0] - b[0] || a[1] - b[1]).map(([, , node]) => node);
}

/**
 * The node types with a port a wire from a port of type `type` may join (`from` "source": the
 * wire leaves an output, so an input of theirs; "target": an output), whose name, type or
 * description contains `query`: those with a port of the very type first, then by name.
 */
export function connectableTypes(
  nodeTypes: Record<string, NodeTypePublic>,
  type: PortType,
  from: PortSide,
  query = "",
): NodeTypePublic[] {
  const term = query.trim().toLowerCase();
  const found: [boolean, NodeTypePublic][] = [];
  for (const spec of Object.values(nodeTypes)) {
    if (term && !`${spec.display_name}\n${spec.type}\n${spec.description}`.toLowerCase().includes(term)) continue;
    const config = defaultsFor(fieldsFor(spec.config_schema as JsonSchema));
    const port = matchingPort(portsFor(spec, config), type, from);
    if (port) found.push([port.type === type, spec]);
  }
  return found
    .sort(([exactA, a], [exactB, b]) => Number(exactB) - Number(exactA) || a.display_name.localeCompare(b.display_name))
    .map(([, spec]) => spec);
}
