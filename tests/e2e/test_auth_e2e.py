"""Token authentication between `edgeperf run` and `edgeperf-server --auth-token`."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edgeperf.client.connection_args import Connection
from edgeperf.client.errors import SutError
from edgeperf.client.plan.settings import Scenario
from edgeperf.client.run import RunOptions, run_benchmark
from tests.e2e._runs import run_options
from tests.e2e._server import serve

pytestmark = pytest.mark.e2e


def options(address: str, out: Path, conf: Path, token: str | None) -> RunOptions:
    return run_options(
        address, Scenario.SINGLE_STREAM, out, conf, deadline_ms=5_000, connection=Connection(auth_token=token)
    )


@pytest.mark.parametrize("streaming", [False, True])
async def test_run_with_the_token_is_valid_and_without_it_is_refused(
    tiny_repo: Path, short_conf: Path, tmp_path: Path, streaming: bool
) -> None:
    with serve(tiny_repo, "--auth-token", "s3cret") as server:
        good = replace(options(server.address, tmp_path / "ok", short_conf, "s3cret"), streaming=streaming)
        outcome = await run_benchmark(good)
        assert outcome.validity == "VALID", outcome.summary_text
        for token in (None, "wrong"):
            with pytest.raises(SutError, match="UNAUTHENTICATED"):
                await run_benchmark(options(server.address, tmp_path / f"bad-{token}", short_conf, token))
            assert not (tmp_path / f"bad-{token}").exists()
