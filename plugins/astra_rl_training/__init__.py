"""Online multi-turn RL in arenas and evaluation on held-out arenas (bundled ASTRA plugin).

* trainer ``rl``: rollouts batched across every live episode, token-in/token-out, calls executed
  in the arena's sandboxed runtime, reward from a verifier, policy update by an RL algorithm
  plugin with the paper's adaptive batch filling; exact resume from checkpoints.
* trainer ``arena-eval``: greedy episodes of one or more models on the held-out arenas.
"""
