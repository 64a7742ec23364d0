"""Before a run over gRPC: does the server measure power, and what is the network like?

`prepare_device` asks the server for its power sources (SystemDescription) and, when it has any and
the run has a performance pass, makes the `PowerMonitor` that marks that pass; then it times the
network with the size of the run's requests. Neither can fail the run: a server without sources, or
without edgeperf's service (Triton), gives "power: not measured" and the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import grpc
import numpy.typing as npt

from edgeperf.client.issue.network import NetworkReport, characterise_network
from edgeperf.client.issue.power import NOT_MEASURED, PowerMonitor, power_sources
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.qsl import RequestEncoder
from edgeperf.client.plan.settings import Scenario, TestMode

if TYPE_CHECKING:
    from edgeperf.client.run_setup import RunOptions

__all__ = ["DeviceProbe", "prepare_device", "request_size"]


class _Samples(Protocol):
    def sample(self, index: int) -> Mapping[str, npt.NDArray[Any]]: ...


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceProbe:
    power: PowerMonitor | None
    power_note: str | None
    network: NetworkReport | None
    lines: tuple[str, ...]
    """What the console shows before the run."""


def request_size(
    encoder: RequestEncoder, source: _Samples, settings: EffectiveSettings, batch_size: int
) -> int:
    """Bytes of one request of this run: one sample, or a batch where Offline/MultiStream group them."""
    sample = encoder.encode_sample(source.sample(0), 0)
    batch = 1
    if settings.scenario in (Scenario.OFFLINE, Scenario.MULTI_STREAM):
        most = encoder.signature.max_batch_size
        batch = max(1, min(batch_size, most if most > 0 else 1, settings.samples_per_query))
    return len(encoder.batch_request([sample] * batch))


async def prepare_device(
    channel: grpc.aio.Channel,
    metadata: Sequence[tuple[str, str]] | None,
    options: RunOptions,
    settings: EffectiveSettings,
    encoder: RequestEncoder,
    source: _Samples,
    timeout_s: float,
) -> DeviceProbe:
    lines: list[str] = []
    monitor: PowerMonitor | None = None
    note: str | None = None
    if settings.mode is not TestMode.ACCURACY_ONLY:
        if not options.power:
            note = "not asked for (--no-power)"
        else:
            sources, note = await power_sources(channel, metadata, timeout_s)
            if sources:
                monitor = PowerMonitor(channel, metadata)
                lines.append(
                    "power: measured over the performance pass by "
                    + ", ".join(f"{s.name} ({s.covers})" for s in sources)
                )
        if note is not None:
            lines.append(f"{NOT_MEASURED} ({note})")
    network: NetworkReport | None = None
    if options.network_pings > 0:
        size = request_size(encoder, source, settings, options.batch_size)
        try:
            network = await characterise_network(
                channel, metadata, request_bytes=size, pings=options.network_pings, timeout_s=timeout_s
            )
            lines.append(network.text())
        except grpc.aio.AioRpcError as exc:
            lines.append(f"network: not characterised ({exc.code().name}: {exc.details()})")
    return DeviceProbe(power=monitor, power_note=note, network=network, lines=tuple(lines))
