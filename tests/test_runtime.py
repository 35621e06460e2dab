"""Process-wide settings: torch's OpenMP spinning is capped before torch loads, never over the user's."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

PROBE = """
import json, os, sys
{before}
from patchnet_zoo._runtime import cap_openmp_spinning, openmp_defaults
first = cap_openmp_spinning()
import torch
print(json.dumps({{"first": first, "again": cap_openmp_spinning(), "env": os.environ.get("GOMP_SPINCOUNT"),
                  "defaults": openmp_defaults()}}))
"""


def _probe(before: str = "", **env) -> dict:
    environ = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    environ.update(env, PYTHONPATH=str(REPO))
    out = subprocess.run([sys.executable, "-c", PROBE.format(before=before)], env=environ, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_spinning_is_capped_before_torch_loads_and_only_then():
    assert _probe() == {"first": True, "again": False, "env": "10000", "defaults": {"GOMP_SPINCOUNT": "10000"}}
    # the user's own setting is kept, and not reported as the package's
    assert _probe(GOMP_SPINCOUNT="500") == {"first": False, "again": False, "env": "500", "defaults": {}}
    # too late once torch is loaded (libgomp has read its environment): nothing is pretended
    assert _probe(before="import torch") == {"first": False, "again": False, "env": None, "defaults": {}}


def test_the_command_line_caps_spinning_before_it_loads_torch():
    code = ("import os, sys; from patchnet_zoo.cli import main; assert 'torch' not in sys.modules; "
            "main(['flops']); assert 'torch' in sys.modules; print(os.environ.get('GOMP_SPINCOUNT'))")
    environ = {k: v for k, v in os.environ.items() if k != "GOMP_SPINCOUNT"}
    out = subprocess.run([sys.executable, "-c", code], env={**environ, "PYTHONPATH": str(REPO)}, check=True,
                         capture_output=True, text=True).stdout
    assert out.strip().splitlines()[-1] == "10000"
