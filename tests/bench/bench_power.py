"""What measuring power costs: Offline throughput with and without the power stream, side by side.

One server over loopback whose power source is a fake RAPL counter (a real one where the machine has it:
pass `--power rapl`), Offline runs of the tiny model alternating with and without `--no-power` so load
from elsewhere falls on both alike; prints each run and the medians.

    python -m tests.bench.bench_power [--runs 5] [--duration-ms 3000] [--power SPEC]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

from edgeperf.benchmarks.tiny import write_model
from edgeperf.client.plan.settings import Scenario, TestMode
from edgeperf.client.run import RunOptions, run_benchmark
from tests.e2e._server import serve
from tests.e2e.test_power_e2e import RAMP_WRITER
from tests.server.power.sysfs import rapl_zone


async def _offline(address: str, conf: Path, out: Path, power: bool) -> tuple[float, str]:
    outcome = await run_benchmark(
        RunOptions(
            server=address,
            model="tiny",
            scenario=Scenario.OFFLINE,
            mode=TestMode.PERFORMANCE_ONLY,
            user_conf=conf,
            out_dir=out,
            batch_size=16,
            power=power,
            network_pings=0,
        )
    )
    metrics = outcome.result_json.get("metrics")
    assert isinstance(metrics, dict)
    power_doc = outcome.result_json.get("power")
    watts = (
        f"{power_doc['average_w']:.2f} W"
        if isinstance(power_doc, dict) and power_doc.get("measured")
        else "-"
    )
    return float(metrics["samples_per_second"]), watts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--duration-ms", type=int, default=3000)
    parser.add_argument("--power", default=None, help="the server's --power (default: a fake RAPL ramp)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp_text:
        tmp = Path(tmp_text)
        write_model(tmp / "repo" / "tiny")
        conf = tmp / "user.conf"
        conf.write_text(
            f"*.Offline.min_duration = {args.duration_ms}\n*.Offline.target_qps = 20000\n*.Offline.min_query_count = 1\n"
        )
        writer = None
        spec = args.power
        if spec is None:
            zone = rapl_zone(tmp / "powercap", "intel-rapl:0", "package-0", 0, max_range_uj=262_143_328_850)
            writer = subprocess.Popen(
                [sys.executable, "-c", RAMP_WRITER, str(zone / "energy_uj"), "12.5", "262143328850"]
            )
            spec = f"rapl={tmp / 'powercap'}"
        try:
            with serve(tmp / "repo", "--power", spec) as server:
                with_power: list[float] = []
                without: list[float] = []
                for i in range(args.runs):
                    for power in (True, False) if i % 2 == 0 else (False, True):
                        rate, watts = asyncio.run(
                            _offline(server.address, conf, tmp / f"run{i}{power}", power)
                        )
                        (with_power if power else without).append(rate)
                        print(
                            f"run {i + 1} power {'on ' if power else 'off'}: {rate:10.1f} samples/s  {watts}",
                            flush=True,
                        )
        finally:
            if writer is not None:
                writer.kill()
    on, off = statistics.median(with_power), statistics.median(without)
    print(
        f"median with power {on:.1f} samples/s, without {off:.1f} samples/s: overhead {(off - on) / off * 100:+.2f}%"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
