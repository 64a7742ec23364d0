"""An external power meter over SCPI through PyVISA: the whole system at the wall, what MLPerf measures.

    scpi=RESOURCE[@BACKEND][;query=COMMAND]

RESOURCE is a VISA resource string ("TCPIP::10.0.0.5::INSTR", "ASRL/dev/ttyUSB0::INSTR",
"USB0::0x0B21::0x0025::...::INSTR"); BACKEND is PyVISA's ("@py" for pyvisa-py, the default;
"PATH.yaml@sim" for pyvisa-sim's simulated instruments in tests). COMMAND asks for active power in
watts and defaults to "MEAS:POW?" (Keysight, Chroma, GW Instek); a Yokogawa WT310 answers
":NUMERIC:NORMAL:VALUE? 3" with its default item list. The instrument's `*IDN?` answer names the source.
"""

from __future__ import annotations

import importlib
import math
import threading
from typing import Any, Final

from edgeperf.server.power.base import PowerError, Scope, SourceInfo

__all__ = ["DEFAULT_QUERY", "ScpiMeter", "parse_scpi_arg"]

DEFAULT_QUERY: Final = "MEAS:POW?"
_TIMEOUT_MS: Final = 2000


def parse_scpi_arg(arg: str) -> tuple[str, str, str]:
    """`RESOURCE[@BACKEND][;query=COMMAND]` -> (resource, backend, query)."""
    target, _, options = arg.partition(";")
    query = DEFAULT_QUERY
    if options:
        key, sep, value = options.partition("=")
        if key.strip() != "query" or not sep or not value.strip():
            raise PowerError(f"scpi={arg}: expected ';query=COMMAND' after the resource, got {options!r}")
        query = value.strip()
    resource, _, backend = target.partition("@")
    if not resource.strip():
        raise PowerError(f"scpi={arg}: no VISA resource (e.g. scpi=TCPIP::10.0.0.5::INSTR)")
    if not backend:
        backend = "@py"
    elif "@" not in backend:  # NOTE: "RES@py" names a backend; "RES@file.yaml@sim" a library path and one
        backend = "@" + backend
    return resource.strip(), backend, query


class ScpiMeter:
    """Active power from an SCPI instrument, one query per read."""

    def __init__(self, arg: str) -> None:
        resource, backend, query = parse_scpi_arg(arg)
        try:
            pyvisa: Any = importlib.import_module("pyvisa")
        except ImportError:
            raise PowerError("scpi: needs pyvisa and pyvisa-py: pip install 'edgeperf[power]'") from None
        self._query = query
        self._lock = threading.Lock()
        try:
            self._manager = pyvisa.ResourceManager(backend)
        except (OSError, ValueError, pyvisa.errors.Error) as err:
            raise PowerError(f"scpi: VISA backend {backend!r}: {err}") from None
        try:
            self._instrument = self._manager.open_resource(resource, timeout=_TIMEOUT_MS)
            self._instrument.read_termination = "\n"
            self._instrument.write_termination = "\n"
            identity = str(self._instrument.query("*IDN?")).strip()
        except (OSError, ValueError, pyvisa.errors.Error) as err:
            self._manager.close()
            raise PowerError(f"scpi: {resource}: cannot open or identify the instrument: {err}") from None
        self._resource = resource
        self._errors = pyvisa.errors.Error
        self._info = SourceInfo(
            name="scpi", kind="power", covers=f"wall ({identity or resource})", scope=Scope.WALL
        )
        try:
            self.read()
        except PowerError:
            self.close()
            raise

    @property
    def info(self) -> SourceInfo:
        return self._info

    def read(self) -> float:
        with self._lock:
            try:
                answer = str(self._instrument.query(self._query)).strip()
            except (OSError, ValueError, self._errors) as err:
                raise PowerError(f"scpi: {self._resource}: {self._query!r} failed: {err}") from None
        try:
            # NOTE: some meters answer "+1.234E+02" or "P,123.4"; the number is the last field.
            watts = float(answer.split(",")[-1])
        except ValueError:
            watts = math.nan
        if not math.isfinite(watts):  # NOTE: a reading out of range comes back as NAN or INF
            raise PowerError(f"scpi: {self._resource}: {self._query!r} answered {answer[:40]!r}, not watts")
        return watts

    def close(self) -> None:
        with self._lock:
            try:
                self._instrument.close()
            finally:
                self._manager.close()
