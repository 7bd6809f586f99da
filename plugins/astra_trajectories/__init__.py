"""Trajectory synthesis (the paper's pipeline 1): chains sampled from tool graphs, verified,
turned into tasks, rolled out against real tools and judged. The bundled sampler is offline."""
