/** Names for the server's schemas (generated), and the JSON Schema as the config forms read it. */
import type { components } from "./schema.gen";

type Schemas = components["schemas"];
export type UserPublic = Schemas["UserPublic"];
export type WorkflowSummary = Schemas["WorkflowSummary"];
export type WorkflowPublic = Schemas["WorkflowPublic"];
export type VersionSummary = Schemas["VersionSummary"];
export type ProblemPublic = Schemas["ProblemPublic"];
export type RunPublic = Schemas["RunPublic"];
export type RunDetail = Schemas["RunDetail"];
export type NodeExecutionPublic = Schemas["NodeExecutionPublic"];
export type ApiKeyPublic = Schemas["ApiKeyPublic"];
export type ApiKeyCreated = Schemas["ApiKeyCreated"];
export type ApiScope = Schemas["ApiKeyCreate"]["scopes"][number];
export type RunScope = NonNullable<Schemas["RunCreate"]["scope"]>;

/** A JSON Schema, as far as the config forms read one. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  default?: unknown;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  allOf?: JsonSchema[];
  $ref?: string;
  $defs?: Record<string, JsonSchema>;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  additionalProperties?: boolean | JsonSchema;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  /** pydantic's tag of a union of objects (agent tools by `kind`). */
  discriminator?: { propertyName: string; mapping?: Record<string, string> };
  /** flowloom's hint: the field names a model of this kind (`chat`, `embedding`, `image`). */
  "x-model-kind"?: string;
  /** flowloom's hint: the field holds the id of another object of the user (`workflow`). */
  "x-refers-to"?: string;
}

export type PortType = Schemas["PortType"];
export type PortPublic = Schemas["PortPublic"];
/** One entry of GET /api/v1/node-types: its `config_schema` is read with `JsonSchema`. */
export type NodeTypePublic = Schemas["NodeTypePublic"];

export type CredentialPublic = Schemas["CredentialPublic"];
export type CredentialKind = NonNullable<Schemas["CredentialCreate"]["kind"]>;
export type IntegrationPublic = Schemas["IntegrationPublic"];
export type ToolPublic = Schemas["ToolPublic"];
export type ConnectionTest = Schemas["ConnectionTest"];
export type AgentPublic = Schemas["AgentPublic"];
export type ThreadPublic = Schemas["ThreadPublic"];
export type MessagePublic = Schemas["MessagePublic"];
export type ReplyPublic = Schemas["ReplyPublic"];
export type AttemptPublic = Schemas["AttemptPublic"];
export type GenerationEntry = Schemas["GenerationEntry"];
export type Provider = Schemas["AgentCreate"]["provider"];

/** An image output: the blob's reference (the bytes are at /api/v1/blobs/{sha256}). */
export interface ImageRef {
  sha256: string;
  content_type?: string;
  width?: number;
  height?: number;
  size?: number;
}
