"""The MCP endpoints of a ``ToolServer``: what is stored, and how it becomes a connection.

An endpoint is plain data kept in the record. Three kinds are understood::

    {"kind": "mcp-stdio", "command": ["python", "-m", "mcp_server_time"], "env": {...},
     "cwd": "/abs/path" | None, "returns": {...}, "annotations": {...}, "scenarios": [...]}
    {"kind": "mcp-http", "url": "https://host/mcp", "transport": "streamable-http" | "sse",
     "headers": {"Authorization": "Bearer ${MCP_TOKEN}"}, "returns": ..., ...}
    {"kind": "smithery", "url": "https://server.smithery.ai/@o/s/mcp?config={config_b64}&
     api_key={smithery_api_key}", "config": "{...}"}          (the authors' registry rows)

``env`` and ``headers`` values and ``url`` may hold ``${NAME}`` references; they are expanded
from ASTRA's environment only when the connection is made, so a secret never lands in a record.
A Smithery URL's ``{smithery_api_key}`` and ``{smithery_profile}`` come from the variables
``SMITHERY_API_KEY`` and ``SMITHERY_PROFILE`` the same way, and ``{config_b64}`` is the base64 of
its ``config``, as the authors' code builds it. An ``mcp-http`` row without ``transport`` uses
SSE when its URL path ends in ``/sse``, else streamable HTTP.
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
from collections.abc import Mapping
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import attrs

from astra_core.records import ToolServer, canonical_json

STDIO_KIND = "mcp-stdio"
HTTP_KIND = "mcp-http"
SMITHERY_KIND = "smithery"
ENDPOINT_KINDS = (STDIO_KIND, HTTP_KIND, SMITHERY_KIND)
ENDPOINT_KIND = STDIO_KIND  # the kind the first MCP plugin wrote; kept for readers
TRANSPORTS = ("streamable-http", "sse")
REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}")
# the placeholders of the authors' Smithery URLs and the variables that fill them
SMITHERY_VARIABLES = {
    "smithery_api_key": "SMITHERY_API_KEY",
    "smithery_profile": "SMITHERY_PROFILE",
}
# shorter filled values are not worth hiding (and would mangle messages)
MIN_SECRET_CHARS = 4

Transport = Literal["streamable-http", "sse"]


class EndpointError(Exception):
    """An endpoint that cannot be used as it is (not MCP, a missing variable...)."""


def expand(value: str, what: str) -> str:
    """``value`` with ``${NAME}`` references filled from this process's environment."""
    missing = [v for v in REFERENCE.findall(value) if v not in os.environ]
    if missing:
        raise EndpointError(
            f"{what} refers to ${{{missing[0]}}}, which is not set in ASTRA's environment"
        )
    return REFERENCE.sub(lambda m: os.environ[m.group(1)], value)


@attrs.frozen
class StdioLaunch:
    """How to start one server: the program, its arguments, extra environment and folder."""

    command: tuple[str, ...]
    env: tuple[tuple[str, str], ...] = ()
    cwd: str | None = None

    @property
    def key(self) -> str:
        """Identifies a server process: calls with the same key share one live session."""
        return canonical_json([list(self.command), dict(self.env), self.cwd])

    @property
    def display(self) -> str:
        return " ".join(self.command)

    @property
    def where(self) -> str:
        """How the server is reached, for messages."""
        return f"command: {self.display}"

    def expanded_env(self) -> dict[str, str]:
        """``env`` with ``${NAME}`` references filled from this process's environment."""
        return {name: expand(value, f"env {name}={value!r}") for name, value in self.env}

    def program(self) -> str:
        """The program as it will run; an error naming the command when it cannot be found."""
        program = self.command[0]
        if os.sep in program or (os.altsep and os.altsep in program):
            path = (
                program
                if os.path.isabs(program) or self.cwd is None
                else os.path.join(self.cwd, program)
            )
            if not os.access(path, os.X_OK):
                raise EndpointError(f"{program!r} is not an executable file")
            return program
        env = self.expanded_env()
        found = shutil.which(program, path=env.get("PATH", os.environ.get("PATH")))
        if found is None:
            raise EndpointError(f"program {program!r} is not on PATH")
        return found


@attrs.frozen
class HttpConnection:
    """The values an ``HttpLaunch`` connects with, filled from the environment, and the
    secrets among them (to take out of any message that might quote them)."""

    url: str
    headers: dict[str, str]
    secrets: tuple[str, ...]

    def redact(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            text = text.replace(secret, "***")
        return text


@attrs.frozen
class HttpLaunch:
    """How to reach one server over HTTP: its URL, transport and headers, as templates."""

    url: str
    transport: Transport = "streamable-http"
    headers: tuple[tuple[str, str], ...] = ()
    smithery_config: str | None = None  # JSON text whose base64 fills {config_b64}

    @property
    def key(self) -> str:
        """Identifies a server: calls with the same key share one live session."""
        return canonical_json([self.url, self.transport, dict(self.headers), self.smithery_config])

    @property
    def display(self) -> str:
        """The URL without its query or user info (where keys hide), and the transport."""
        parts = urlsplit(self.url)
        host = parts.netloc.rsplit("@", 1)[-1]
        return f"{urlunsplit((parts.scheme, host, parts.path, '', ''))} ({self.transport})"

    @property
    def where(self) -> str:
        return f"url: {self.display}"

    def connection(self) -> HttpConnection:
        """The URL and headers filled from the environment; ``EndpointError`` naming a
        variable that is not set."""
        secrets: list[str] = []

        def fill(value: str, what: str) -> str:
            for name in REFERENCE.findall(value):
                if name in os.environ:
                    secrets.append(os.environ[name])
            return expand(value, what)

        url = fill(self.url, "url")
        for placeholder, variable in SMITHERY_VARIABLES.items():
            token = "{" + placeholder + "}"
            if token not in url:
                continue
            if variable not in os.environ:
                raise EndpointError(
                    f"the Smithery url needs {token}, from ${{{variable}}}, which is not set in "
                    "ASTRA's environment"
                )
            secrets.append(os.environ[variable])
            url = url.replace(token, os.environ[variable])
        if "{config_b64}" in url:
            encoded = base64.b64encode((self.smithery_config or "{}").encode("utf-8")).decode()
            secrets.append(encoded)  # a Smithery config often holds the server's own API keys
            url = url.replace("{config_b64}", encoded)
        headers = {name: fill(value, f"header {name}") for name, value in self.headers}
        kept = tuple(s for s in secrets if len(s) >= MIN_SECRET_CHARS)
        return HttpConnection(url, headers, kept)


Launch = StdioLaunch | HttpLaunch


def endpoint_of(
    command: tuple[str, ...] | list[str],
    env: Mapping[str, str] | None = None,
    cwd: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """The endpoint dict of a stdio server, stored in a ``ToolServer``."""
    return {
        "kind": STDIO_KIND,
        "command": list(command),
        "env": dict(env or {}),
        "cwd": cwd,
        **extra,
    }


def http_endpoint_of(
    url: str, transport: str, headers: Mapping[str, str] | None = None, **extra: Any
) -> dict[str, Any]:
    """The endpoint dict of a server reached over HTTP (header values stay templates)."""
    return {
        "kind": HTTP_KIND,
        "url": url,
        "transport": transport,
        "headers": dict(headers or {}),
        **extra,
    }


def launch_of(server: ToolServer) -> Launch:
    """How to reach ``server``; ``EndpointError`` when its endpoint is not an MCP one."""
    endpoint = server.endpoint or {}
    if endpoint.get("kind") not in ENDPOINT_KINDS:
        kinds = ", ".join(repr(k) for k in ENDPOINT_KINDS)
        raise EndpointError(
            f"server {server.title!r} ({server.id}) has endpoint kind "
            f"{endpoint.get('kind')!r}, not an MCP one ({kinds}): the mcp executor only calls "
            "MCP servers"
        )
    return launch_from(endpoint, where=f"server {server.title!r}")


def launch_from(endpoint: Mapping[str, Any], *, where: str = "endpoint") -> Launch:
    kind = endpoint.get("kind", STDIO_KIND)
    if kind == HTTP_KIND:
        return _http_launch(endpoint, where)
    if kind == SMITHERY_KIND:
        return _smithery_launch(endpoint, where)
    command = endpoint.get("command")
    if (
        not isinstance(command, (list, tuple))
        or not command
        or not all(isinstance(c, str) for c in command)
    ):
        raise EndpointError(f"{where}: endpoint command must be a list of strings, got {command!r}")
    env = _string_map(endpoint.get("env"), f"{where}: endpoint env")
    cwd = endpoint.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise EndpointError(f"{where}: endpoint cwd must be a path, got {cwd!r}")
    return StdioLaunch(tuple(command), tuple(sorted(env.items())), cwd)


def _string_map(value: Any, what: str) -> dict[str, str]:
    value = value or {}
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise EndpointError(f"{what} must map names to strings, got {value!r}")
    return dict(value)


def _url(endpoint: Mapping[str, Any], where: str) -> str:
    url = endpoint.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise EndpointError(f"{where}: endpoint url must be an http(s) URL, got {url!r}")
    return url


def transport_for(url: str, transport: Any, where: str) -> Transport:
    """The transport named, or (none named) SSE for a URL path ending in ``/sse``."""
    if transport is None:
        return "sse" if urlsplit(url).path.rstrip("/").endswith("/sse") else "streamable-http"
    if transport not in TRANSPORTS:
        raise EndpointError(
            f"{where}: endpoint transport must be one of {', '.join(TRANSPORTS)}, got {transport!r}"
        )
    return transport  # type: ignore[no-any-return]


def _http_launch(endpoint: Mapping[str, Any], where: str) -> HttpLaunch:
    url = _url(endpoint, where)
    headers = _string_map(endpoint.get("headers"), f"{where}: endpoint headers")
    transport = transport_for(url, endpoint.get("transport"), where)
    return HttpLaunch(url, transport, tuple(sorted(headers.items())))


def _smithery_launch(endpoint: Mapping[str, Any], where: str) -> HttpLaunch:
    url = _url(endpoint, where)
    config = endpoint.get("config")
    if config is not None and not isinstance(config, str):
        config = json.dumps(config, separators=(",", ":"))
    headers = _string_map(endpoint.get("headers"), f"{where}: endpoint headers")
    transport = transport_for(url, endpoint.get("transport"), where)
    return HttpLaunch(url, transport, tuple(sorted(headers.items())), config)
