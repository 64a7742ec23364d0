"""Fault-suite fixtures: a lab per test (removed also on failure), the tiny model, and the summary table."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeperf.benchmarks.tiny import write_model
from tests.faults.netlab import NetLab, netlab, unavailable_reason

pytestmark = pytest.mark.faults

RESULTS: list[str] = []
"""One line per finished case, printed after the run (`make faults`)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    del config
    reason = unavailable_reason()
    if reason is None:
        return
    # NOTE: printed as the skip reason (pytest -rs) so a CI log says why the suite did not run.
    for item in items:
        if "tests/faults/" in str(item.path).replace(os.sep, "/"):
            item.add_marker(pytest.mark.skip(reason=reason))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if RESULTS:
        terminalreporter.section("fault cases")
        for line in RESULTS:
            terminalreporter.write_line(line)


@pytest.fixture(scope="session")
def fault_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("fault-repo")
    write_model(repo / "tiny")
    return repo


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[NetLab]:
    with netlab(tmp_path) as made:
        yield made
