"""Outside services, in two halves.

Pure clients, which know no database and no node: :mod:`flowloom.integrations.mcp` (MCP
servers), :mod:`flowloom.integrations.oauth` and :mod:`flowloom.integrations.oauth_http` (OAuth 2
and the secrets of HTTP requests). Database-backed stores, which give the engine's nodes their
stored credentials, servers, tokens and usage recording: :mod:`flowloom.integrations.credentials`,
:mod:`flowloom.integrations.mcp_store`, :mod:`flowloom.integrations.oauth_store`,
:mod:`flowloom.integrations.usage`. Secrets at rest are sealed by :mod:`flowloom.storage.vault`.
Nothing is imported here, so importing a client loads no store.
"""
