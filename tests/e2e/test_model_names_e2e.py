"""A model the server does not serve is named with the models it does serve, before any run starts."""

from __future__ import annotations

from pathlib import Path

import pytest

from edgeperf.client.errors import ServerUnavailable
from edgeperf.client.plan.settings import Scenario
from edgeperf.client.run import run_benchmark
from tests.e2e._runs import run_options
from tests.e2e._server import ServerProcess

pytestmark = pytest.mark.e2e


async def test_unknown_model_lists_the_served_models(
    tiny_server: ServerProcess, short_conf: Path, tmp_path: Path
) -> None:
    options = run_options(
        tiny_server.address, Scenario.SINGLE_STREAM, tmp_path / "out", short_conf, model="nosuch"
    )
    with pytest.raises(ServerUnavailable, match=r"'nosuch' is not served by .* \(models: tiny\)"):
        await run_benchmark(options)
    assert not (tmp_path / "out").exists()
