"""The bundled offline servers, one module each, in a fixed order."""

from __future__ import annotations

from astra_tool_catalog.catalog_model import ServerSpec
from astra_tool_catalog.servers import (
    bank,
    calendar_events,
    flights,
    helpdesk,
    library,
    recipes,
    shop,
    weather,
    workspace_files,
)

SERVERS: dict[str, ServerSpec] = {
    module.SERVER.name: module.SERVER
    for module in (
        shop,
        workspace_files,
        calendar_events,
        weather,
        library,
        flights,
        bank,
        recipes,
        helpdesk,
    )
}


def get_server(name: str) -> ServerSpec:
    try:
        return SERVERS[name]
    except KeyError:
        raise KeyError(
            f"no bundled server {name!r}; the bundled servers are: {', '.join(SERVERS)}"
        ) from None
