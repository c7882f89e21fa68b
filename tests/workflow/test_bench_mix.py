"""bench/core.py, the workflow core's figure (DESIGN.md: ≥ 20,000 transitions/s), fires a mix
of real lifecycles of the latest workflow. Every step of every path must be one the workflow
allows, or the bench stops before it measures; a workflow change that breaks a path fails
here, not the next time someone runs the bench (version 2's `rate` needing `resolved` went
unnoticed for a while)."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType

import pytest

BENCH_CORE = Path(__file__).resolve().parents[2] / "bench" / "core.py"


@pytest.fixture
def core() -> Iterator[ModuleType]:
    """bench/core.py as a module. It puts bench/ first on `sys.path` to import `_common`;
    both are undone afterwards, so that bench/'s `deadlines`, `reports` or `routing` never
    stand in for a module of the same name in a later test of this worker."""
    path = list(sys.path)
    spec = importlib.util.spec_from_file_location("huying_bench_core", BENCH_CORE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
        yield module
    finally:
        sys.path[:] = path
        for name, loaded in list(sys.modules.items()):
            if Path(getattr(loaded, "__file__", None) or "/").parent == BENCH_CORE.parent:
                del sys.modules[name]


def test_the_core_bench_walks_every_path_of_the_latest_workflow(core: ModuleType) -> None:
    engine = core.build_engine()
    firings = core.build_mix(engine, 400)  # raises at the first step the workflow refuses

    latest = engine.latest("service_request").version
    assert latest >= 2
    assert {version for _, version, *_ in firings} == {latest}
    named = {
        trigger
        for lead, co in core.LEADS
        for _, steps in core.lifecycles(lead, co)
        for trigger, _, _ in steps
    }
    assert {trigger for _, _, _, trigger, *_ in firings} == named
    # part two's many hands are in the mix: tasks signed and answered by their departments
    assert {"task_sign", "task_reply", "delegate", "reassign", "accept_return"} <= named
