"""The paper's pipeline 1 with an LLM: proposed chains, verified walks, tasks, agent rollouts on
real or emulated tools, and the seven-score trajectory judge."""
