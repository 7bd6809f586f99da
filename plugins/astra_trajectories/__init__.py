"""Trajectory synthesis (the paper's pipeline 1): chains sampled from tool graphs, verified,
turned into tasks, rolled out against real or emulated tools and judged. Samplers: the offline
``offline-chain-walk``, the LLM-driven ``llm-pipeline`` and the ``mcp-probe`` of live servers."""
