"""Models, supervised fine-tuning, online RL in arenas and evaluation (bundled ASTRA plugin).

* trainer ``sft`` (``sft``): fine-tunes a causal LM on tool-calling conversations (the run's
  trajectories or OpenAI-messages JSONL), loss on assistant tokens only, with exact resume.
* trainer ``rl`` (``rl_trainer``): rollouts batched across every live episode,
  token-in/token-out, calls executed in the arena's sandboxed runtime, reward from a verifier,
  policy update by an RL algorithm plugin with the paper's adaptive batch filling
  (``batch_filling``); exact resume from checkpoints.
* evaluator ``arena-eval`` (``arena_eval``): greedy episodes of one or more models on the
  held-out arenas.
* ``tiny_model``: build a small Qwen3-architecture model and a BPE tokenizer with a Hermes/Qwen
  tool-calling chat template from the run's own data (offline runs).
* ``checkpoints``: both trainers' checkpoints (``astra_training.accelerate_setup`` makes their
  ``Accelerator``).
"""
