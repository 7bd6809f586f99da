"""Hook implementations of the sft-data plugin: the ``astra sft-data`` command (import of the
authors' released SFT data, ShareGPT export, dataset checks)."""

from __future__ import annotations

from typing import Any

from astra_core import hookimpl


@hookimpl
def astra_add_commands(subparsers: Any) -> None:
    from astra_sft_data.commands import add_sft_data_command

    add_sft_data_command(subparsers)
