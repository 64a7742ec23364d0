"""mlperf.conf / user.conf: LoadGen's file format and lookup order, read strictly (MLPERF_LOADGEN.md §4).

Values are read exactly as LoadGen's `TestSettings::FromConfig` reads them (tokens, `model.scenario.key`
lookup with `*`, C `strtoull` base 0 and `strtod`, ms and percent units, the rule preset first and then
one user.conf). Unlike LoadGen, a line that LoadGen would ignore, reject or read differently from what
it says raises `ConfigError(path, line_no, key, reason)`. With `strict=False` those lines are read as
LoadGen reads them and reported as warnings instead; lines that make LoadGen reject the whole file
always raise.
"""

from __future__ import annotations

import importlib.resources
import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path

from edgeperf.client.errors import EdgeperfClientError
from edgeperf.client.plan.conf_keys import BY_NAME, KEYS, ConfKey, Kind
from edgeperf.client.plan.conf_values import UINT64_MAX, c_int, is_c_int, loadgen_accepts, strtod, strtoull
from edgeperf.client.plan.settings import Rules, Scenario, TestMode, TestSettings

__all__ = [
    "ConfigError",
    "ConfigSource",
    "ResolvedSettings",
    "load_test_settings",
    "preset_path",
    "resolve_test_settings",
]

_SCENARIO_TOKENS = frozenset(s.value for s in Scenario)


class ConfigError(EdgeperfClientError):
    """A conf-file line that edgeperf cannot use, named by file, line and key."""

    def __init__(self, path: str | Path, line_no: int, key: str | None, reason: str) -> None:
        self.path = str(path)
        """The file."""
        self.line_no = line_no
        """1-based line number; 0 when the problem is the file itself."""
        self.key = key
        """The `model.scenario.key` of the line, or None when there is no key."""
        self.reason = reason
        """What is wrong, and what LoadGen would do with the line."""
        where = f"{self.path}:{line_no}" if line_no else self.path
        super().__init__(f"{where}: {key}: {reason}" if key else f"{where}: {reason}")


@dataclass(frozen=True, slots=True)
class ConfigSource:
    """Where one setting came from."""

    path: str
    line_no: int
    key: str
    """The `model.scenario.key` written in the file."""
    text: str
    """The value as written."""

    def __str__(self) -> str:
        return f"{self.path}:{self.line_no} ({self.key} = {self.text})"


@dataclass(frozen=True, slots=True)
class _Line:
    line_no: int
    key: str
    model: str
    scenario: str
    name: str
    value: str


@dataclass(slots=True)
class _File:
    path: str
    entries: dict[str, _Line] = field(default_factory=dict)


@dataclass(frozen=True, slots=True, kw_only=True)
class ResolvedSettings:
    """The requested settings and why each field has its value."""

    settings: TestSettings
    sources: Mapping[str, ConfigSource | str]
    """Field name -> the conf line that set it, or a note ("default", "argument")."""
    warnings: tuple[str, ...] = ()
    """With strict=False: the lines LoadGen reads differently from what they say, as "path:line: ..."."""

    def explain(self) -> Iterator[str]:
        """One "field = value  <- source" line per field, in TestSettings order."""
        for f in fields(TestSettings):
            name = f.name
            yield f"{name} = {getattr(self.settings, name)!r}  <- {self.sources.get(name, 'default')}"


class _Problems:
    def __init__(self, strict: bool) -> None:
        self.strict = strict
        self.warnings: list[str] = []

    def report(self, path: str, line_no: int, key: str | None, reason: str) -> None:
        error = ConfigError(path, line_no, key, reason)
        if self.strict:
            raise error
        if str(error) not in self.warnings:
            self.warnings.append(str(error))


def _parse(path: str, text: str, rules: Rules, is_preset: bool, problems: _Problems) -> _File:
    parsed = _File(path)
    seen: dict[str, int] = {}
    # NOTE: getline splits on "\n" only; split() then drops "\r" and the other C whitespace.
    for line_no, line in enumerate(text.split("\n"), start=1):
        tokens = line.split()
        if not tokens or tokens[0] == "#":
            continue
        key = tokens[0]
        if key.startswith("#"):
            if len(tokens) > 1:
                raise ConfigError(
                    path, line_no, None, "'#' must be followed by a space; LoadGen rejects the file"
                )
            problems.report(path, line_no, None, "'#' must be followed by a space; LoadGen ignores the line")
            continue
        if len(tokens) == 1:
            why = "'k=v' needs spaces around '='" if "=" in key else "key without '= value'"
            problems.report(path, line_no, key, f"{why}; LoadGen silently ignores the line")
            continue
        if tokens[1] == "#":
            problems.report(path, line_no, key, "'#' where '=' belongs; LoadGen silently ignores the line")
            continue
        if tokens[1] != "=":
            raise ConfigError(path, line_no, key, "expected 'key = value'; LoadGen rejects the whole file")
        values = tokens[2:]
        if not values:
            problems.report(path, line_no, key, "missing value; LoadGen silently ignores the line")
            continue
        for value in values:
            if not loadgen_accepts(value):
                what = "trailing comment" if value.startswith("#") else f"value {value!r} is not a number"
                raise ConfigError(path, line_no, key, f"{what}; LoadGen rejects the whole file")
        if len(values) > 1:
            problems.report(path, line_no, key, f"{len(values)} values; LoadGen keeps the last, {values[-1]}")
        parts = key.rsplit(".", 2)
        if len(parts) != 3 or not all(parts):
            problems.report(path, line_no, key, "key must be 'model.scenario.name'; LoadGen never reads it")
            continue
        model, scenario, name = parts
        if scenario != "*" and scenario not in _SCENARIO_TOKENS:
            known = ", ".join(sorted(_SCENARIO_TOKENS))
            problems.report(path, line_no, key, f"unknown scenario {scenario!r} (known: {known}, *)")
            continue
        reason = _key_problem(name, scenario, rules, is_preset)
        if reason:
            problems.report(path, line_no, key, reason)
            continue
        if key in seen:
            problems.report(path, line_no, key, f"repeats line {seen[key]}; LoadGen keeps the last")
        seen[key] = line_no
        entry = _Line(line_no, key, model, scenario, name, values[-1])
        # NOTE: values are checked on every line, not only on the lines this model looks up.
        for spec in BY_NAME[name]:
            if scenario == "*" or spec.scenario is None or spec.scenario.value == scenario:
                _convert(spec, entry, path, problems)
        parsed.entries[key] = entry
    return parsed


def _key_problem(name: str, scenario: str, rules: Rules, is_preset: bool) -> str:
    specs = BY_NAME.get(name)
    if not specs:
        return f"unknown key {name!r}; LoadGen never reads it"
    if rules is Rules.V2_1 and specs[0].current_only:
        return f"{name!r} is not a key of LoadGen v2.1"
    if scenario != "*" and all(s.scenario is not None and s.scenario.value != scenario for s in specs):
        wanted = "/".join(s.scenario.value for s in specs if s.scenario is not None)
        return f"LoadGen reads {name!r} only for {wanted}, never for {scenario}"
    if rules is Rules.CURRENT and specs[0].preset_only_current and not is_preset:
        return f"current LoadGen reads {name!r} only from its built-in mlperf.conf; this line has no effect"
    return ""


def _lookup(parsed: _File, model: str, scenario: str, name: str) -> _Line | None:
    for candidate in (
        f"{model}.{scenario}.{name}",
        f"*.{scenario}.{name}",
        f"{model}.*.{name}",
        f"*.*.{name}",
    ):
        if candidate in parsed.entries:
            return parsed.entries[candidate]
    return None


def _convert(spec: ConfKey, line: _Line, path: str, problems: _Problems) -> object:
    """The value LoadGen stores for the line, after reporting anything surprising about it."""
    token, key = line.value, line.key
    if spec.kind is Kind.DOUBLE:
        value = strtod(token) * spec.multiplier
        if not math.isfinite(value):
            raise ConfigError(path, line.line_no, key, f"{token!r} is not a finite number")
        bad = {
            "positive": not value > 0,
            "percent": not 0 < value <= 1,
            "probability": not 0 <= value <= 1,
        }.get(spec.check, value < 0)
        if bad:
            raise ConfigError(path, line.line_no, key, f"value {token} is out of range for {spec.field}")
        return value
    integer = strtoull(token)
    if not is_c_int(token):
        problems.report(
            path, line.line_no, key, f"{token!r} is not an integer; LoadGen reads it as {integer}"
        )
    elif not 0 <= c_int(token) <= UINT64_MAX:
        problems.report(
            path, line.line_no, key, f"{token!r} is outside uint64; LoadGen reads it as {integer}"
        )
    if spec.kind is Kind.MODE:
        if integer > 3:
            problems.report(
                path, line.line_no, key, "mode must be 0-3; LoadGen logs an error and keeps the mode"
            )
            return None
        return TestMode.from_conf_value(integer)
    if spec.kind in (Kind.FLAG, Kind.FLAG_ONE):
        if integer > 1:
            reads = integer != 0 if spec.kind is Kind.FLAG else integer == 1
            problems.report(path, line.line_no, key, f"a flag is 0 or 1; LoadGen reads {token} as {reads}")
        return integer != 0 if spec.kind is Kind.FLAG else integer == 1
    value = (integer * int(spec.multiplier)) % 2**64
    if spec.check == "count" and value == 0:
        raise ConfigError(path, line.line_no, key, f"{spec.field} must be at least 1")
    if spec.field == "server_max_async_queries" and value >= 2**31:
        problems.report(
            path, line.line_no, key, "LoadGen casts max_async_queries to int; keep it below 2**31"
        )
    if spec.none_if_zero and value == 0:
        return None
    return value


def _apply(
    settings: TestSettings,
    parsed: _File,
    model: str,
    scenario: Scenario,
    sources: dict[str, ConfigSource | str],
    problems: _Problems,
) -> TestSettings:
    changes: dict[str, object] = {}
    for spec in KEYS:
        if spec.needs and not changes.get(spec.needs, getattr(settings, spec.needs)):
            line = _lookup(parsed, model, (spec.scenario or scenario).value, spec.name)
            if line is not None:
                problems.report(
                    parsed.path, line.line_no, line.key, f"LoadGen reads it only when {spec.needs} = 1"
                )
            continue
        line = _lookup(parsed, model, (spec.scenario or scenario).value, spec.name)
        if line is None:
            continue
        value = _convert(spec, line, parsed.path, problems)
        if spec.kind is Kind.MODE and value is None:
            continue
        changes[spec.field] = value
        sources[spec.field] = ConfigSource(parsed.path, line.line_no, line.key, line.value)
    return replace(settings, **changes)  # type: ignore[arg-type]


def preset_path(rules: Rules | str) -> Path:
    """The rule preset shipped with edgeperf: `mlperf-v2.1.conf` or `mlperf-current.conf`."""
    rules = Rules(rules)
    name = "mlperf-v2.1.conf" if rules is Rules.V2_1 else "mlperf-current.conf"
    # NOTE: the folder is not called "conf": mypy would resolve edgeperf.client.plan.conf to it.
    return Path(str(importlib.resources.files("edgeperf.client.plan").joinpath("presets", name)))


def _read(path: Path) -> str:
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(path, 0, None, f"cannot read the file: {exc.strerror or exc}") from exc
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = data[: exc.start].count(b"\n") + 1
        raise ConfigError(
            path, line_no, None, f"not UTF-8 text (byte 0x{data[exc.start]:02x}); save the file as UTF-8"
        ) from None


def resolve_test_settings(
    model: str,
    scenario: Scenario,
    *,
    rules: Rules | str = Rules.V2_1,
    user_conf: Path | None = None,
    mode: TestMode | None = None,
    audit_conf: Path | None = None,
    strict: bool = True,
) -> ResolvedSettings:
    """Read the rule preset, then `user_conf`, then `audit_conf`, as LoadGen does (§4.4).

    Args:
        model: the model name for `model.scenario.key` lookups ("resnet50", "3d-unet", ...).
        scenario: the scenario; it selects the generic keys and is stored in the settings.
        rules: "v2.1" (default) or "current": which preset and which LoadGen semantics.
        user_conf: an optional user.conf.
        mode: overrides any `mode` key.
        audit_conf: an optional audit.config (compliance tests), looked up with model "*".
        strict: raise ConfigError for every line LoadGen would ignore or misread; False reads such
            lines as LoadGen does and lists them in `warnings`.

    Raises:
        ConfigError: for an unreadable file or an unusable line.
    """
    rules = Rules(rules)
    problems = _Problems(strict)
    sources: dict[str, ConfigSource | str] = {"scenario": "argument", "rules": "argument"}
    settings = TestSettings(scenario=scenario, rules=rules)
    preset = preset_path(rules)
    files: list[tuple[Path, bool, str]] = [(preset, True, model)]
    if user_conf is not None:
        files.append((Path(user_conf), False, model))
    if audit_conf is not None:
        files.append((Path(audit_conf), False, "*"))
    for path, is_preset, lookup_model in files:
        parsed = _parse(str(path), _read(path), rules, is_preset, problems)
        try:
            settings = _apply(settings, parsed, lookup_model, scenario, sources, problems)
        except ValueError as exc:
            raise ConfigError(path, 0, None, str(exc)) from exc
    if mode is not None:
        settings = replace(settings, mode=mode)
        sources["mode"] = "argument"
    return ResolvedSettings(settings=settings, sources=sources, warnings=tuple(problems.warnings))


def load_test_settings(
    model: str,
    scenario: Scenario,
    *,
    rules: Rules | str = "v2.1",
    user_conf: Path | None = None,
    mode: TestMode | None = None,
) -> TestSettings:
    """The requested settings from the rule preset and an optional user.conf (strict).

    Raises:
        ConfigError: for an unreadable file or any line LoadGen would ignore, reject or misread.
    """
    return resolve_test_settings(model, scenario, rules=rules, user_conf=user_conf, mode=mode).settings
