"""What a run records about the device beside its results: the power over the timed pass and the network.

One place turns a `PowerMeasurement` and a `NetworkReport` into result.json's `power` and `network`
sections, the detail log's `edgeperf_power_*`/`edgeperf_network_*` records, the summary's edgeperf
section, `spl.txt` and the console lines. A run without a power source says "power: not measured" and
why, and writes nothing else about power.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgeperf.client.issue.power import NOT_MEASURED
from edgeperf.client.plan.effective import EffectiveSettings
from edgeperf.client.plan.settings import Scenario
from edgeperf.client.report.log_format import atomic_write

if TYPE_CHECKING:
    from edgeperf.client.issue.network import NetworkReport
    from edgeperf.client.issue.pass_result import ModeResult
    from edgeperf.client.issue.power import PowerMeasurement
    from edgeperf.client.report.metrics import PerformanceSummary

__all__ = ["SAMPLE_LOG", "DeviceNotes"]

SAMPLE_LOG = "spl.txt"


@dataclass(frozen=True, slots=True, kw_only=True)
class DeviceNotes:
    power: PowerMeasurement | None
    power_note: str | None
    """Why there is no measurement; None when power was not asked for (an accuracy-only run)."""
    network: NetworkReport | None
    samples: int
    queries: int
    per_query: bool
    """SingleStream/MultiStream: energy is reported per query (MLPerf's "energy per stream")."""
    latency_p50_ns: float | None

    @classmethod
    def of(
        cls,
        settings: EffectiveSettings,
        performance: ModeResult | None,
        summary: PerformanceSummary | None,
        *,
        power_note: str | None,
        network: NetworkReport | None,
    ) -> DeviceNotes:
        power = performance.power if performance is not None else None
        note = power_note
        if performance is not None and performance.power_note is not None:
            note = performance.power_note
        latency = summary.sample_latency if summary is not None else None
        if summary is not None and summary.query_latency is not None:
            latency = summary.query_latency
        return cls(
            power=power,
            power_note=None if power is not None else note,
            network=network,
            samples=summary.sample_count if summary is not None else 0,
            queries=summary.queries_issued if summary is not None else 0,
            per_query=settings.scenario in (Scenario.SINGLE_STREAM, Scenario.MULTI_STREAM),
            latency_p50_ns=None if latency is None else float(latency.at(0.5)),
        )

    @property
    def network_share(self) -> float | None:
        if self.network is None or self.latency_p50_ns is None:
            return None
        return self.network.share_of(self.latency_p50_ns)

    def detail_items(self) -> list[tuple[str, object]]:
        items: list[tuple[str, object]] = []
        if self.power is not None:
            items += self.power.detail_items(
                samples=self.samples, queries=self.queries, per_query=self.per_query
            )
        network = self.network
        if network is not None:
            items += [
                ("edgeperf_network_rtt_p50_us", round(network.rtt_empty_p50_us, 1)),
                ("edgeperf_network_rtt_p99_us", round(network.rtt_empty_p99_us, 1)),
            ]
            if network.rtt_request_p50_us is not None and network.rtt_request_p99_us is not None:
                items += [
                    ("edgeperf_network_request_bytes", network.request_bytes),
                    ("edgeperf_network_request_rtt_p50_us", round(network.rtt_request_p50_us, 1)),
                    ("edgeperf_network_request_rtt_p99_us", round(network.rtt_request_p99_us, 1)),
                ]
            if network.request_mbit_s is not None:
                items.append(("edgeperf_network_request_mbit_s", round(network.request_mbit_s, 1)))
            share = self.network_share
            if share is not None:
                items.append(("edgeperf_network_latency_share", round(share, 4)))
        return items

    def summary_lines(self) -> list[str]:
        """The summary's edgeperf section (empty for runs without a network report, e.g. in-process SUTs)."""
        if self.network is None and self.power is None:
            return []
        lines: list[str] = []
        if self.power is not None:
            lines += self.power.summary_lines(
                samples=self.samples, queries=self.queries, per_query=self.per_query
            )
        elif self.power_note is not None:
            lines.append(f"Power : not measured ({self.power_note})")
        network = self.network
        if network is not None:
            lines.append(
                f"Network RTT p50 / p99 (us) : {network.rtt_empty_p50_us:.1f} / {network.rtt_empty_p99_us:.1f}"
            )
            if network.rtt_request_p50_us is not None and network.rtt_request_p99_us is not None:
                lines.append(
                    f"Network RTT with {network.request_bytes} B requests p50 / p99 (us) : "
                    f"{network.rtt_request_p50_us:.1f} / {network.rtt_request_p99_us:.1f}"
                )
            if network.request_mbit_s is not None:
                lines.append(f"Network request bandwidth (Mbit/s) : {network.request_mbit_s:.1f}")
            share = self.network_share
            if share is not None:
                lines.append(f"Network share of the median latency : {share * 100:.1f}%")
        return lines

    def console_lines(self) -> list[str]:
        lines: list[str] = []
        power = self.power
        if power is not None:
            text = (
                f"power: {power.average_w:.3f} W average over {power.window_ns / 1e9:.2f} s ({power.covers}), "
                f"{power.energy_j:.3f} J"
            )
            per_watt = power.per_watt(self.samples)
            if per_watt is not None:
                text += f", {per_watt:.4g} samples/s per W"
            mj = power.millijoules_per_query(self.queries)
            if self.per_query and mj is not None:
                text += f", {mj:.3f} mJ per query"
            lines.append(text)
        elif self.power_note is not None:
            lines.append(f"{NOT_MEASURED} ({self.power_note})")
        if self.network is not None:
            lines.append(self.network.text())
            share = self.network_share
            if share is not None:
                lines.append(f"network share of the median latency: {share * 100:.1f}%")
        return lines

    def as_json(self, summary: PerformanceSummary | None) -> dict[str, object]:
        out: dict[str, object] = {}
        if self.power is not None:
            out["power"] = self.power.as_json(
                samples=self.samples, queries=self.queries, per_query=self.per_query
            )
        elif self.power_note is not None:
            out["power"] = {"measured": False, "reason": self.power_note}
        if self.network is not None:
            out["network"] = {**self.network.as_json(), "latency_share_p50": self.network_share}
        return out

    def write_sample_log(self, out_dir: Path, settings: EffectiveSettings) -> list[Path]:
        """`spl.txt` for a measured pass; a stale one from an earlier run in the folder is removed."""
        path = out_dir / SAMPLE_LOG
        if self.power is None:
            path.unlink(missing_ok=True)
            return []
        mark = f"edgeperf_{settings.scenario.value}_performance"
        atomic_write(path, self.power.spl_lines(mark))
        return [path]
