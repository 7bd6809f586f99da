"""Live MCP servers over stdio: the ``mcp-stdio`` tool-graph source, the ``mcp`` tool executor
and the offline ``mcp-probe`` trajectory sampler."""
