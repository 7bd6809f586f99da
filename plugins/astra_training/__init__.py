"""Models and supervised fine-tuning (bundled ASTRA plugin).

* trainer ``sft``: fine-tunes a causal LM on tool-calling conversations (the run's trajectories
  or OpenAI-messages JSONL), loss on assistant tokens only, on Accelerate, with exact resume.
* ``astra_training.tiny_model``: build a small Qwen3-architecture model and a BPE tokenizer with
  a Hermes/Qwen tool-calling chat template from the run's own data (offline runs).
* ``astra_training.checkpoints``: the trainer's checkpoints (``astra_core.accelerate_setup``
  makes its ``Accelerator``).
"""
