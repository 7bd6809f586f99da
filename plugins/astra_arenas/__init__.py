"""ASTRA's bundled arenas plugin: RL environments (arenas) synthesised offline, verified in the
sandbox, the sub-task F1 verifier, the arena runtime RL rollouts drive, and the ASTRA-RL-1k
format."""
