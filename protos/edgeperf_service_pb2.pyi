from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

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
    __slots__ = ("host_name", "os", "cpu_model", "cpu_cores", "memory_bytes", "accelerators", "onnxruntime_version", "onnxruntime_providers", "edgeperf_version", "python_version", "machine")
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
    def __init__(self, host_name: _Optional[str] = ..., os: _Optional[str] = ..., cpu_model: _Optional[str] = ..., cpu_cores: _Optional[int] = ..., memory_bytes: _Optional[int] = ..., accelerators: _Optional[_Iterable[_Union[Accelerator, _Mapping]]] = ..., onnxruntime_version: _Optional[str] = ..., onnxruntime_providers: _Optional[_Iterable[str]] = ..., edgeperf_version: _Optional[str] = ..., python_version: _Optional[str] = ..., machine: _Optional[str] = ...) -> None: ...
