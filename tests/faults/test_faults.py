"""The load generator under network and server faults: no hang, every sample counted once, logs whole.

Each case runs the real `edgeperf run` in the client namespace against the real server in the server
namespace, through the delaying relay, and injects its fault a second after the run started. Checked for
every case: the run ends within its bound, `issued = completed + failed` in result.json, every log file is
complete and parses, and the exit code is the documented one for the result (0 VALID, 3 INVALID).
`EDGEPERF_FAULT_RUN_S` lengthens the runs (`make faults`); CI keeps the default short ones.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from edgeperf.client.report.latency_dump import read_latencies
from tests._child import LineWatch
from tests.e2e.test_run_e2e import check_logs
from tests.faults.conftest import RESULTS
from tests.faults.netlab import NetLab

pytestmark = pytest.mark.faults

RUN_S = float(os.environ.get("EDGEPERF_FAULT_RUN_S", "3"))
FAULT_AT_S = 1.0
TARGET_QPS = 200
DEADLINE_MS = 1000
EXIT_BY_VALIDITY = {"VALID": 0, "INVALID": 3}


@dataclass(frozen=True, slots=True)
class Outcome:
    exit_code: int
    elapsed_s: float
    fault_to_end_s: float
    doc: dict[str, object]
    out: Path
    stdout: str

    @property
    def errors(self) -> dict[str, object]:
        errors = self.doc["errors"]
        assert isinstance(errors, dict)
        perf = errors["performance"]
        assert isinstance(perf, dict)
        return perf

    @property
    def by_status(self) -> dict[str, int]:
        found = self.errors["by_status"]
        assert isinstance(found, dict)
        return found

    @property
    def validity(self) -> str:
        validity = self.doc["validity"]
        assert isinstance(validity, dict)
        return str(validity["result_validity"])


def _user_conf(tmp_path: Path, run_s: float) -> Path:
    path = tmp_path / "user.conf"
    path.write_text(
        f"*.Server.target_qps = {TARGET_QPS}\n"
        "*.Server.target_latency = 1000\n"
        "*.Server.min_query_count = 1\n"
        f"*.Server.min_duration = {int(run_s * 1000)}\n",
        encoding="utf-8",
    )
    return path


def run_case(
    name: str,
    lab: NetLab,
    address: str,
    tmp_path: Path,
    fault: Callable[[], None] | None = None,
    *,
    abort_after_errors: int = 1_000_000,
    run_s: float = RUN_S,
    deadline_ms: int = DEADLINE_MS,
) -> Outcome:
    """Run `edgeperf run` in the client namespace; call `fault` FAULT_AT_S after the run announced itself."""
    out = tmp_path / "out"
    argv = lab.client_command(
        [
            sys.executable, "-m", "edgeperf.client.cli", "run",
            "--server", address, "--model", "tiny", "--scenario", "Server",
            "--user-conf", str(_user_conf(tmp_path, run_s)), "--out", str(out),
            "--deadline-ms", str(deadline_ms), "--abort-after-errors", str(abort_after_errors),
            "--no-progress",
        ]
    )  # fmt: skip
    started = time.monotonic()
    process = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert process.stdout is not None
    # NOTE: the network check is the last thing printed before the timed run; a fault timed from an
    # earlier line could fall in the pre-run pings and never touch the run.
    watch = LineWatch(process.stdout, lambda line: line.startswith("network:"))
    lines = watch.lines
    fault_at = started
    try:
        assert watch.marked.wait(60), "the client never started its run"
        time.sleep(FAULT_AT_S)
        fault_at = time.monotonic()
        if fault is not None:
            fault()
        # NOTE: the bound for "no hang": the run's length, the drain (deadline + 1 s) and a margin for a
        # busy 2-core machine.
        exit_code = process.wait(run_s + deadline_ms / 1000 + 30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(5)
        watch.join()
        process.stdout.close()
    ended = time.monotonic()
    assert (out / "result.json").is_file(), f"exit {exit_code}:\n" + "".join(lines)
    doc = check_logs(out)
    outcome = Outcome(exit_code, ended - started, ended - fault_at, doc, out, "".join(lines))
    issued, failed = outcome.errors["samples"], outcome.errors["failed"]
    metrics = doc["metrics"]
    assert isinstance(metrics, dict)
    completed = metrics["sample_count"]
    RESULTS.append(
        f"{name:<22} exit {exit_code}  {outcome.validity:<7}  fault->end {outcome.fault_to_end_s:5.1f} s  "
        f"total {outcome.elapsed_s:5.1f} s  issued {issued} = completed {completed} + failed {failed}  "
        f"{dict(sorted(outcome.by_status.items()))}"
    )
    # every issued sample is either completed or failed with a status, exactly once
    assert issued == completed + failed, outcome.stdout
    lat = read_latencies(out)
    assert len(lat["ok"]) == issued
    assert int(np.count_nonzero(lat["ok"])) == completed
    assert exit_code == EXIT_BY_VALIDITY[outcome.validity], outcome.stdout
    assert f"Result is : {outcome.validity}" in (out / "mlperf_log_summary.txt").read_text()
    return outcome


def _recovered(out: Path) -> bool:
    """Some sample completed after the first failed one: the client got through again."""
    lat = read_latencies(out)
    order = np.argsort(lat["scheduled_ns"], kind="stable")
    ok = lat["ok"][order]
    failed_at = np.flatnonzero(~ok)
    return failed_at.size > 0 and bool(ok[failed_at[0] :].any())


def test_delay_20ms_shows_in_the_latency_floor_and_the_network_share(
    lab: NetLab, fault_repo: Path, tmp_path: Path
) -> None:
    lab.start_server(fault_repo)
    # 10 ms each way: 20 ms added to every round trip.
    # NOTE: a deadline far above the delay: on a busy machine a late answer must not turn into a failure.
    address = lab.start_relay(delay_ms=10, jitter_ms=2)
    outcome = run_case("delay 20 ms", lab, address, tmp_path, deadline_ms=10_000)
    assert outcome.errors["failed"] == 0
    metrics = outcome.doc["metrics"]
    assert isinstance(metrics, dict)
    assert metrics["sample_latency_ns"]["min"] >= 16e6  # 20 ms less the jitter's 2 ms each way
    breakdown = outcome.doc["latency_breakdown_ns"]
    assert isinstance(breakdown, dict)
    # the relay's delay is on the wire, so the breakdown puts it in the network share, not the server's
    assert breakdown["network_and_serialization"]["p50_ns"] >= 18e6


@pytest.mark.parametrize("percent", [1, 10])
def test_random_loss(lab: NetLab, fault_repo: Path, tmp_path: Path, percent: int) -> None:
    lab.start_server(fault_repo)
    # NOTE: loss starts mid-run: a dropped SYN costs TCP 1 s, which the run's own pre-run check
    # (bounded by the 1 s deadline) would report as a dead server instead of testing the run.
    address = lab.start_relay(delay_ms=1)
    outcome = run_case(f"loss {percent}%", lab, address, tmp_path, lambda: lab.set_loss(percent))
    # TCP retransmits what was dropped: samples complete, some late; none is lost.
    assert outcome.errors["samples"] > 0


def test_link_cut_mid_run_ends_invalid_within_the_deadline(
    lab: NetLab, fault_repo: Path, tmp_path: Path
) -> None:
    lab.start_server(fault_repo)
    outcome = run_case("link cut", lab, lab.start_relay(delay_ms=1), tmp_path, lab.cut, abort_after_errors=20)
    assert outcome.validity == "INVALID" and outcome.exit_code == 3
    assert outcome.by_status.get("DEADLINE_EXCEEDED", 0) > 0
    # abandoned after 20 failures in a row: the deadline and the drain, not the full run
    assert outcome.fault_to_end_s < DEADLINE_MS / 1000 + 1.0 + 10
    assert "ended early" in outcome.stdout


def test_link_restored_mid_run_recovers_and_says_what_failed(
    lab: NetLab, fault_repo: Path, tmp_path: Path
) -> None:
    def cut_then_restore() -> None:
        lab.cut()
        time.sleep(1.5)
        lab.restore()

    lab.start_server(fault_repo)
    # NOTE: a run ends once errors went on for the deadline with no success; a 3 s deadline keeps it
    # going through the 1.5 s cut, so it is the restored link that is tested, not the early end.
    address = lab.start_relay(delay_ms=1)
    outcome = run_case("link cut and restored", lab, address, tmp_path, cut_then_restore, deadline_ms=3_000)
    # The outage shows, as late answers (TCP retransmits what the cut held) or as DEADLINE_EXCEEDED
    # samples, which the summary names; the run goes on to its end and the last samples complete.
    # Whether a 1.5 s stall of a few queries moves the percentile past the bound depends on how many
    # queries the run had around it, so the verdict may go either way; the exit code must match it.
    assert (outcome.validity, outcome.exit_code) in {("VALID", 0), ("INVALID", 3)}, outcome.stdout
    assert "ended early" not in outcome.stdout, outcome.stdout
    metrics = outcome.doc["metrics"]
    assert isinstance(metrics, dict)
    failed = outcome.by_status.get("DEADLINE_EXCEEDED", 0)
    assert metrics["sample_latency_ns"]["max"] >= 1.0e9 or failed > 0
    if failed:
        assert "DEADLINE_EXCEEDED" in (outcome.out / "mlperf_log_summary.txt").read_text()
    lat = read_latencies(outcome.out)
    last = lat["ok"][np.argsort(lat["scheduled_ns"], kind="stable")][-20:]
    assert bool(last.all()), "samples complete again once the link is back"


def test_server_killed_and_restarted_mid_run(lab: NetLab, fault_repo: Path, tmp_path: Path) -> None:
    first = lab.start_server(fault_repo)

    def kill_and_restart() -> None:
        first.signal(signal.SIGKILL)
        lab.start_server(fault_repo)

    address = lab.start_relay(delay_ms=1)
    # NOTE: the client ends a run once errors went on for the deadline with no success (a dead
    # server); a 15 s deadline outlasts the new server's start (seconds of imports on a busy machine)
    # and gRPC's reconnect backoff (1 s, 1.6 s, ...). Requests to a dead server fail at once, not late.
    outcome = run_case(
        "server SIGKILL+restart",
        lab,
        address,
        tmp_path,
        kill_and_restart,
        run_s=max(RUN_S, 12.0),
        deadline_ms=15_000,
    )
    assert outcome.validity == "INVALID" and outcome.exit_code == 3
    assert outcome.by_status.get("UNAVAILABLE", 0) > 0
    assert _recovered(outcome.out), "the client reconnects to the restarted server"


def test_server_stopped_with_sigstop(lab: NetLab, fault_repo: Path, tmp_path: Path) -> None:
    server = lab.start_server(fault_repo)
    address = lab.start_relay(delay_ms=1)
    outcome = run_case(
        "server SIGSTOP", lab, address, tmp_path, lambda: server.signal(signal.SIGSTOP), abort_after_errors=20
    )
    assert outcome.validity == "INVALID" and outcome.exit_code == 3
    assert outcome.by_status.get("DEADLINE_EXCEEDED", 0) > 0
    assert outcome.fault_to_end_s < DEADLINE_MS / 1000 + 1.0 + 10
