"""Fixtures for the client-server tests: the tiny model repository and servers on 127.0.0.1:0."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from edgeperf.benchmarks import registry
from edgeperf.benchmarks.tiny import write_model
from tests.e2e._server import ServerProcess, serve

SHORT_CONF = """\
# short runs that still pass LoadGen's early-stopping floors on a busy 2-core machine
*.*.min_duration = 200
*.SingleStream.min_query_count = 64
# below any latency here, so the run never runs out of generated queries (it ends at the two minimums)
*.SingleStream.target_latency = 0.1
*.MultiStream.min_query_count = 662
*.MultiStream.target_latency = 1
*.Server.min_query_count = 470
*.Server.target_qps = 400
*.Server.target_latency = 2000
*.Offline.min_query_count = 1
*.Offline.target_qps = 200000
*.Offline.min_duration = 50
"""


@pytest.fixture(scope="session")
def tiny_repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("repo")
    write_model(repo / "tiny")
    return repo


@pytest.fixture(scope="session")
def tiny_server(tiny_repo: Path) -> Iterator[ServerProcess]:
    with serve(tiny_repo) as server:
        yield server


@pytest.fixture(scope="module")
def small_resnet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server of the small ResNet50 stand-in, for the tests of one module."""
    repo = tmp_path_factory.mktemp("repo")
    registry.get("resnet50").write_model(repo / "resnet50", size="small")
    with serve(repo) as server:
        yield server


@pytest.fixture
def short_conf(tmp_path: Path) -> Path:
    path = tmp_path / "user.conf"
    path.write_text(SHORT_CONF, encoding="utf-8")
    return path
