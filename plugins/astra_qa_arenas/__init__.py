"""The paper's environment synthesis with an LLM: verified arenas from a user's questions."""
