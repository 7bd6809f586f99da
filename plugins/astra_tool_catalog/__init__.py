"""Bundled tool catalog: offline tool servers with Python implementations, tool servers read
from files (the authors' ``mcp_servers.jsonl`` and OpenAI tool lists), schema-flow tool graphs
and the ``python-catalog`` executor."""
