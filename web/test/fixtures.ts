import type { NodeTypeSpec } from "../src/api/types";

const str = { type: "string" } as const;

export const SPECS: NodeTypeSpec[] = [
  {
    type: "text.value",
    category: "ACTION",
    version: 1,
    deterministic: true,
    description: "A fixed piece of text.",
    dynamic_ports: false,
    config_schema: { properties: { text: { ...str, default: "", title: "Text" } }, type: "object" },
    inputs: [],
    outputs: [{ name: "text", type: "string", required: true, is_list: false, description: "" }],
  },
  {
    type: "text.template",
    category: "ACTION",
    version: 1,
    deterministic: true,
    description: "Text from a template.",
    dynamic_ports: true,
    config_schema: {
      type: "object",
      properties: {
        template: { ...str, default: "" },
        variables: { type: "array", items: { type: "string" } },
      },
    },
    inputs: [],
    outputs: [{ name: "text", type: "string", required: true, is_list: false, description: "" }],
  },
  {
    type: "image.resize",
    category: "ACTION",
    version: 1,
    deterministic: true,
    description: "Resize.",
    dynamic_ports: false,
    config_schema: { type: "object", properties: {} },
    inputs: [{ name: "image", type: "image", required: true, is_list: false, description: "" }],
    outputs: [{ name: "image", type: "image", required: true, is_list: false, description: "" }],
  },
  {
    type: "text.join",
    category: "ACTION",
    version: 1,
    deterministic: true,
    description: "Join.",
    dynamic_ports: false,
    config_schema: { type: "object", properties: { separator: { ...str, default: "" } } },
    inputs: [{ name: "items", type: "any", required: true, is_list: true, description: "" }],
    outputs: [{ name: "text", type: "string", required: true, is_list: false, description: "" }],
  },
];
