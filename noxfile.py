"""Developer sessions: ``nox -s tests``, ``nox -s lint``, ``nox -s typecheck``.

Sessions reuse the torch already installed in the interpreter's environment when possible; set
``ASTRA_TORCH`` to a pip requirement (default ``torch==2.13.0``, a CPU wheel here) to choose the
build a fresh virtualenv gets, so a CPU machine is not pushed into a multi-GB CUDA download.
"""

from __future__ import annotations

import os

import nox

nox.options.sessions = ["lint", "typecheck", "tests"]
nox.options.reuse_existing_virtualenvs = True
TORCH = os.environ.get("ASTRA_TORCH", "torch==2.13.0")


@nox.session
def tests(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[test]", "./tests/fixtures/astra-plugin-example")
    session.run("python", "-m", "pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    session.install("ruff>=0.17,<0.18")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


@nox.session
def typecheck(session: nox.Session) -> None:
    session.install(TORCH)
    session.install("-e", ".[test]", "mypy>=1.10")
    session.run("mypy", "astra_core", "plugins")
