"""One scheduler per MLPerf scenario, chosen by an exhaustive match on `Scenario`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

import numpy as np
import numpy.typing as npt

from edgeperf.client.plan.scenarios.base import Clock, LoopClock, QueryProgress, Scheduler, wait_until
from edgeperf.client.plan.scenarios.multi_stream import MultiStreamScheduler
from edgeperf.client.plan.scenarios.offline import OfflineScheduler
from edgeperf.client.plan.scenarios.server import ServerScheduler, find_peak_qps
from edgeperf.client.plan.scenarios.single_stream import SingleStreamScheduler
from edgeperf.client.plan.settings import Scenario

__all__ = [
    "Clock",
    "LoopClock",
    "MultiStreamScheduler",
    "OfflineScheduler",
    "QueryProgress",
    "Scheduler",
    "ServerScheduler",
    "SingleStreamScheduler",
    "find_peak_qps",
    "make_scheduler",
    "wait_until",
]


def make_scheduler(
    scenario: Scenario,
    *,
    start_ns: int,
    offsets_ns: Sequence[int] | npt.NDArray[np.int64],
    progress: QueryProgress,
    clock: Clock,
) -> Scheduler:
    """The scheduler of `scenario` for a run that started at `start_ns` (absolute ns).

    Args:
        offsets_ns: the schedule's scheduled offsets from the start (only Server reads them).
        progress: completion tracking (SingleStream and MultiStream wait for the previous query).
    """
    match scenario:
        case Scenario.SINGLE_STREAM:
            return SingleStreamScheduler(progress, clock)
        case Scenario.MULTI_STREAM:
            return MultiStreamScheduler(progress, clock)
        case Scenario.SERVER:
            return ServerScheduler(start_ns, offsets_ns, clock)
        case Scenario.OFFLINE:
            return OfflineScheduler(start_ns)
        case _:
            assert_never(scenario)
