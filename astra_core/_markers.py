"""The pluggy markers. ``hookimpl`` is public (re-exported as ``astra_core.hookimpl``);
the spec marker stays private to the core, as in tox."""

from __future__ import annotations

import pluggy

PROJECT_NAME = "astra"

hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
hookspec = pluggy.HookspecMarker(PROJECT_NAME)
