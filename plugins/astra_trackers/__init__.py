"""Trackers: a JSONL metrics log, Weights & Biases (offline-friendly) and a console printer."""

from astra_trackers.console import ConsoleTracker
from astra_trackers.jsonl import JSONLTracker
from astra_trackers.wandb_run import WandbTracker

__all__ = ["ConsoleTracker", "JSONLTracker", "WandbTracker"]
