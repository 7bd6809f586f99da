"""Sandboxes for untrusted code (bundled ASTRA plugin): bubblewrap and a plain subprocess,
one-shot runs and persistent per-episode workers."""
