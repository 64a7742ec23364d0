"""`make bench`: the server, load-generator, client (with its issue loop alone) and suite benchmarks, one after the other, in one process tree."""

from __future__ import annotations

import subprocess
import sys

PARTS = (
    "tests.bench.bench_server",
    "tests.bench.bench_loadgen",
    "tests.bench.bench_client",
    "tests.bench.bench_issue_loop",
    "tests.bench.bench_suite",
)


def main() -> int:
    failed: list[str] = []
    for module in PARTS:
        print(f"\n=== {module} ===", flush=True)
        # Each part in its own interpreter: the parts start servers and must not share event loops or state.
        if subprocess.run([sys.executable, "-m", module, *sys.argv[1:]], check=False).returncode != 0:
            failed.append(module)
    if failed:
        print(f"\nbenchmarks that failed to run: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
