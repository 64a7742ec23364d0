"""`make demo`: the ResNet50 stand-in served on loopback, SingleStream and Offline runs, results under results/.

    python -m tests.bench.demo [--models DIR] [--out DIR]

Builds the full-size ResNet50 stand-in once (`edgeperf-server build --out models resnet50`, reused when
it exists), serves it with `edgeperf-server serve` on 127.0.0.1:0, runs `edgeperf run` for SingleStream
and Offline with a short user.conf (a few seconds each; the expected latency and QPS come from
`edgeperf run`'s warm-up), prints each summary and stops the server.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

SHORT_CONF = """\
# make demo: short runs (a few seconds each); not comparable with MLPerf results
*.*.min_duration = 2000
*.SingleStream.min_query_count = 64
*.Offline.min_query_count = 1
# NOTE: no expected latency or QPS: `edgeperf run` measures them with a short warm-up (--user-conf runs)
"""


def build_model(models: Path) -> Path:
    model_dir = models / "resnet50"
    if (model_dir / "config.pbtxt").is_file():
        print(f"using the cached ResNet50 stand-in in {model_dir}")
        return model_dir
    print(f"building the ResNet50 stand-in into {models} ...", flush=True)
    subprocess.run(
        [sys.executable, "-m", "edgeperf.server.cli", "build", "--out", str(models), "resnet50"], check=True
    )
    return model_dir


class Server:
    """`edgeperf-server serve` on 127.0.0.1:0; the address comes from its ready line."""

    def __init__(self, repository: Path) -> None:
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "edgeperf.server.cli",
                "serve",
                "--model-repository",
                str(repository),
                "--listen",
                "127.0.0.1:0",
                "--metrics-listen",
                "127.0.0.1:0",
            ],
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        self.address = ""
        self._ready = threading.Event()
        self._tail: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self._tail = [*self._tail[-20:], line]
            if not self.address and '"event": "ready"' in line:
                self.address = json.loads(line)["address"]
                self._ready.set()
        self._ready.set()

    def wait_ready(self, timeout_s: float) -> str:
        if not self._ready.wait(timeout_s) or not self.address:
            raise RuntimeError("the server did not start:\n" + "".join(self._tail))
        return self.address

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def run_scenario(address: str, scenario: str, conf: Path, out: Path, extra: list[str]) -> int:
    print(f"\n--- edgeperf run --scenario {scenario} ---", flush=True)
    command = [
        sys.executable,
        "-m",
        "edgeperf.client.cli",
        "run",
        "--server",
        address,
        "--benchmark",
        "resnet50",
        "--scenario",
        scenario,
        "--dataset",
        "synthetic:32",
        "--user-conf",
        str(conf),
        "--out",
        str(out / scenario),
        *extra,
    ]
    return subprocess.run(command, check=False).returncode


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", type=Path, default=Path("models"), help="model cache (default models/)")
    parser.add_argument(
        "--out", type=Path, default=Path("results/demo"), help="results (default results/demo)"
    )
    args = parser.parse_args(argv)
    started = time.perf_counter()
    model_dir = build_model(args.models).resolve()
    with tempfile.TemporaryDirectory(prefix="edgeperf-demo-") as tmp:
        # NOTE: serve only ResNet50, whatever else the model cache holds.
        repository = Path(tmp) / "repository"
        repository.mkdir()
        os.symlink(model_dir, repository / "resnet50")
        conf = Path(tmp) / "user.conf"
        conf.write_text(SHORT_CONF, encoding="utf-8")
        server = Server(repository)
        try:
            address = server.wait_ready(180)
            print(f"edgeperf-server is serving resnet50 on {address}", flush=True)
            codes = [run_scenario(address, "SingleStream", conf, args.out, [])]
            codes.append(run_scenario(address, "Offline", conf, args.out, ["--batch-size", "8"]))
        finally:
            server.stop()
    print(f"\nresults written under {args.out}/ (demo took {time.perf_counter() - started:.0f} s)")
    # NOTE: INVALID (exit 3) is a legitimate outcome of a short demo run; errors are not.
    return 1 if any(code not in (0, 3) for code in codes) else 0


if __name__ == "__main__":
    sys.exit(main())
