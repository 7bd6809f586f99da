"""The trainers' CPU allocator settings: freed memory kept for the next step, unless the user
chose their own."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest
from astra_training.host_allocator import allocator_left_to_user, is_glibc

glibc = pytest.mark.skipif(not is_glibc(), reason="glibc's mallopt")

# A step's worth of allocations: tensors of 0.25-3.25 MiB made, written and freed, as a
# training step's activations are; the page faults they cost, counted in a fresh interpreter.
_STEPS = """
import json, resource, sys, torch
{setup}
def faults(): return resource.getrusage(resource.RUSAGE_SELF).ru_minflt
before = faults()
for i in range(200):
    step = [torch.empty(((i * 7 + k) % 13 + 1) * 65536).fill_(1.0) for k in range(6)]
    del step
print(json.dumps({{"faults": faults() - before, "kept": {kept}}}))
"""


def _faults(setup: str, kept: str, env: dict[str, str] | None = None) -> dict:
    code = textwrap.dedent(_STEPS.format(setup=setup, kept=kept))
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


@glibc
def test_a_cpu_accelerator_keeps_freed_memory_for_the_next_step() -> None:
    tuned = _faults(
        "from astra_training.accelerate_setup import make_accelerator\n"
        "from astra_training import host_allocator\n"
        "make_accelerator()",
        "host_allocator._done",
        dict(os.environ, ACCELERATE_USE_CPU="1"),  # on a GPU machine too
    )
    plain = _faults("", "False")
    assert tuned["kept"] is True
    # glibc's default maps and unmaps these blocks every time: ~100k faults against ~5k
    assert tuned["faults"] * 4 < plain["faults"], (tuned, plain)


@glibc
def test_the_users_own_malloc_settings_are_left_alone() -> None:
    env = dict(os.environ, MALLOC_ARENA_MAX="2", MALLOC_MMAP_THRESHOLD_="131072")
    result = _faults(
        "from astra_training import host_allocator\nkept = host_allocator.keep_freed_memory()",
        "kept",
        env,
    )
    assert result["kept"] is False


@pytest.mark.parametrize(
    ("environ", "why"),
    [
        ({"MALLOC_TRIM_THRESHOLD_": "0"}, "MALLOC_TRIM_THRESHOLD_ is set"),
        (
            {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0"},
            "GLIBC_TUNABLES sets glibc.malloc",
        ),
        ({"LD_PRELOAD": "/usr/lib/libjemalloc.so.2"}, "LD_PRELOAD has jemalloc"),
    ],
)
def test_why_the_allocator_is_left_to_the_user(environ: dict[str, str], why: str) -> None:
    assert allocator_left_to_user(environ) == why


@glibc
def test_nothing_set_leaves_the_allocator_to_astra() -> None:
    assert allocator_left_to_user({"GLIBC_TUNABLES": "glibc.cpu.hwcaps=-AVX"}) == ""
