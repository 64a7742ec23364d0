from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class PowerSourceInfo(_message.Message):
    __slots__ = ("name", "kind", "covers", "scope")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    COVERS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    covers: str
    scope: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., covers: _Optional[str] = ..., scope: _Optional[str] = ...) -> None: ...

class PowerMark(_message.Message):
    __slots__ = ("kind", "interval_ms", "window_ns")
    class Kind(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
        __slots__ = ()
        BEGIN: _ClassVar[PowerMark.Kind]
        END: _ClassVar[PowerMark.Kind]
    BEGIN: PowerMark.Kind
    END: PowerMark.Kind
    KIND_FIELD_NUMBER: _ClassVar[int]
    INTERVAL_MS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_NS_FIELD_NUMBER: _ClassVar[int]
    kind: PowerMark.Kind
    interval_ms: int
    window_ns: int
    def __init__(self, kind: _Optional[_Union[PowerMark.Kind, str]] = ..., interval_ms: _Optional[int] = ..., window_ns: _Optional[int] = ...) -> None: ...

class PowerTick(_message.Message):
    __slots__ = ("t_ns", "watts", "total_watts")
    T_NS_FIELD_NUMBER: _ClassVar[int]
    WATTS_FIELD_NUMBER: _ClassVar[int]
    TOTAL_WATTS_FIELD_NUMBER: _ClassVar[int]
    t_ns: int
    watts: _containers.RepeatedScalarFieldContainer[float]
    total_watts: float
    def __init__(self, t_ns: _Optional[int] = ..., watts: _Optional[_Iterable[float]] = ..., total_watts: _Optional[float] = ...) -> None: ...

class PowerStarted(_message.Message):
    __slots__ = ("sources",)
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    sources: _containers.RepeatedCompositeFieldContainer[PowerSourceInfo]
    def __init__(self, sources: _Optional[_Iterable[_Union[PowerSourceInfo, _Mapping]]] = ...) -> None: ...

class PowerSourceTotal(_message.Message):
    __slots__ = ("source", "energy_j", "average_w", "reads")
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_W_FIELD_NUMBER: _ClassVar[int]
    READS_FIELD_NUMBER: _ClassVar[int]
    source: PowerSourceInfo
    energy_j: float
    average_w: float
    reads: int
    def __init__(self, source: _Optional[_Union[PowerSourceInfo, _Mapping]] = ..., energy_j: _Optional[float] = ..., average_w: _Optional[float] = ..., reads: _Optional[int] = ...) -> None: ...

class PowerResult(_message.Message):
    __slots__ = ("window_ns", "energy_j", "average_w", "covers", "scope", "sources")
    WINDOW_NS_FIELD_NUMBER: _ClassVar[int]
    ENERGY_J_FIELD_NUMBER: _ClassVar[int]
    AVERAGE_W_FIELD_NUMBER: _ClassVar[int]
    COVERS_FIELD_NUMBER: _ClassVar[int]
    SCOPE_FIELD_NUMBER: _ClassVar[int]
    SOURCES_FIELD_NUMBER: _ClassVar[int]
    window_ns: int
    energy_j: float
    average_w: float
    covers: str
    scope: str
    sources: _containers.RepeatedCompositeFieldContainer[PowerSourceTotal]
    def __init__(self, window_ns: _Optional[int] = ..., energy_j: _Optional[float] = ..., average_w: _Optional[float] = ..., covers: _Optional[str] = ..., scope: _Optional[str] = ..., sources: _Optional[_Iterable[_Union[PowerSourceTotal, _Mapping]]] = ...) -> None: ...

class PowerEvent(_message.Message):
    __slots__ = ("started", "tick", "result")
    STARTED_FIELD_NUMBER: _ClassVar[int]
    TICK_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    started: PowerStarted
    tick: PowerTick
    result: PowerResult
    def __init__(self, started: _Optional[_Union[PowerStarted, _Mapping]] = ..., tick: _Optional[_Union[PowerTick, _Mapping]] = ..., result: _Optional[_Union[PowerResult, _Mapping]] = ...) -> None: ...

class EchoRequest(_message.Message):
    __slots__ = ("payload", "response_bytes")
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_BYTES_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    response_bytes: int
    def __init__(self, payload: _Optional[bytes] = ..., response_bytes: _Optional[int] = ...) -> None: ...

class EchoResponse(_message.Message):
    __slots__ = ("payload",)
    PAYLOAD_FIELD_NUMBER: _ClassVar[int]
    payload: bytes
    def __init__(self, payload: _Optional[bytes] = ...) -> None: ...

class SystemDescriptionRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Accelerator(_message.Message):
    __slots__ = ("name", "kind", "memory_bytes", "driver_version", "uuid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    DRIVER_VERSION_FIELD_NUMBER: _ClassVar[int]
    UUID_FIELD_NUMBER: _ClassVar[int]
    name: str
    kind: str
    memory_bytes: int
    driver_version: str
    uuid: str
    def __init__(self, name: _Optional[str] = ..., kind: _Optional[str] = ..., memory_bytes: _Optional[int] = ..., driver_version: _Optional[str] = ..., uuid: _Optional[str] = ...) -> None: ...

class SystemDescriptionResponse(_message.Message):
    __slots__ = ("host_name", "os", "cpu_model", "cpu_cores", "memory_bytes", "accelerators", "onnxruntime_version", "onnxruntime_providers", "edgeperf_version", "python_version", "machine", "power_sources")
    HOST_NAME_FIELD_NUMBER: _ClassVar[int]
    OS_FIELD_NUMBER: _ClassVar[int]
    CPU_MODEL_FIELD_NUMBER: _ClassVar[int]
    CPU_CORES_FIELD_NUMBER: _ClassVar[int]
    MEMORY_BYTES_FIELD_NUMBER: _ClassVar[int]
    ACCELERATORS_FIELD_NUMBER: _ClassVar[int]
    ONNXRUNTIME_VERSION_FIELD_NUMBER: _ClassVar[int]
    ONNXRUNTIME_PROVIDERS_FIELD_NUMBER: _ClassVar[int]
    EDGEPERF_VERSION_FIELD_NUMBER: _ClassVar[int]
    PYTHON_VERSION_FIELD_NUMBER: _ClassVar[int]
    MACHINE_FIELD_NUMBER: _ClassVar[int]
    POWER_SOURCES_FIELD_NUMBER: _ClassVar[int]
    host_name: str
    os: str
    cpu_model: str
    cpu_cores: int
    memory_bytes: int
    accelerators: _containers.RepeatedCompositeFieldContainer[Accelerator]
    onnxruntime_version: str
    onnxruntime_providers: _containers.RepeatedScalarFieldContainer[str]
    edgeperf_version: str
    python_version: str
    machine: str
    power_sources: _containers.RepeatedCompositeFieldContainer[PowerSourceInfo]
    def __init__(self, host_name: _Optional[str] = ..., os: _Optional[str] = ..., cpu_model: _Optional[str] = ..., cpu_cores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., accelerators: _Optional[_Iterable[_Union[Accelerator, _Mapping]]] = ..., onnxruntime_version: _Optional[str] = ..., onnxruntime_providers: _Optional[_Iterable[str]] = ..., edgeperf_version: _Optional[str] = ..., python_version: _Optional[str] = ..., machine: _Optional[str] = ..., power_sources: _Optional[_Iterable[_Union[PowerSourceInfo, _Mapping]]] = ...) -> None: ...
