"""Tools the model may call: MCP servers from the user's `mcp.json`, started when first
needed, and the tool calls of a reply, each asked of the user before it runs
(docs/tools.md).

The MCP SDK is an optional dependency (`htmxchat[mcp]`); everything here that needs it
imports it when a server is first started, so a plain install still runs and says how to
add it.
"""
