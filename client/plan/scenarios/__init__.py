"""One scheduler per MLPerf scenario, chosen by an exhaustive match on `Scenario`."""

from __future__ import annotations

from collections.abc import Sequence
from typing import assert_never

import numpy as np
import numpy.typing as npt

from edgeperf.client.plan.scenarios.base import Clock, LoopClock, QueryProgress, Scheduler, wait_until
from edgeperf.client.plan.scenarios.offline import OfflineScheduler
from edgeperf.client.plan.scenarios.server import ServerScheduler
from edgeperf.client.plan.scenarios.streams import StreamScheduler
from edgeperf.client.plan.settings import Scenario

__all__ = [
    "Clock",
    "LoopClock",
    "OfflineScheduler",
    "QueryProgress",
    "Scheduler",
    "ServerScheduler",
    "StreamScheduler",
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
        case Scenario.SINGLE_STREAM | Scenario.MULTI_STREAM:
            return StreamScheduler(progress, clock)
        case Scenario.SERVER:
            return ServerScheduler(start_ns, offsets_ns, clock)
        case Scenario.OFFLINE:
            return OfflineScheduler(start_ns)
        case _:
            assert_never(scenario)
