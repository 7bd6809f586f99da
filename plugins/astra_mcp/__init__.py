"""Live MCP servers over stdio: the ``mcp-stdio`` tool-graph source and the ``mcp`` tool
executor."""
