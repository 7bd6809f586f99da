"""ASTRA core: the plugin contract, the records that flow between stages and the machinery that
runs them. Bundled stages live in separate plugin packages found through entry points."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from astra_core._markers import hookimpl
from astra_core.errors import AstraError, ConfigError, PluginError, RecordError, StoreError

__version__ = "0.1.0"

if TYPE_CHECKING:
    from astra_core.config import RunConfig
    from astra_core.report import RunReport

__all__ = [
    "AstraError",
    "ConfigError",
    "PluginError",
    "RecordError",
    "StoreError",
    "__version__",
    "hookimpl",
    "load_config",
    "load_plugins",
    "run",
]


def run(config: RunConfig | str | Any, out_dir: Any = "runs/astra", **kwargs: Any) -> RunReport:
    """Run the stages a config names; see ``astra_core.pipeline.run``."""
    from astra_core.pipeline import run as _run

    return _run(config, out_dir, **kwargs)


def load_config(path: Any) -> RunConfig:
    """Read and check a TOML run config; see ``astra_core.config.load_config``."""
    from astra_core.config import load_config as _load

    return _load(path)


def load_plugins(**kwargs: Any) -> Any:
    """Load the installed plugins (and any given); see ``astra_core.plugins.load_plugins``."""
    from astra_core.plugins import load_plugins as _load

    return _load(**kwargs)
