"""A benchmark's model on disk: an official file checked against the spec, a stand-in written in its
place, and the config.pbtxt parameters that record which one it is (so a result can say whether it
used the reference model, closed division, or another one)."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import onnx

from edgeperf.benchmarks._common import DatasetError, ModelMismatch, Precision
from edgeperf.benchmarks._onnx import TensorDecl, check_model_io, config_pbtxt, file_sha256, save_model
from edgeperf.benchmarks.base import Size
from edgeperf.protos.kserve import TensorSpec

__all__ = ["OnnxModelWriter", "check_file_against_spec", "provenance_parameters", "tensor_decls"]


def provenance_parameters(
    *, from_file: bool, size: Size, precision: Precision, sha256: str, division: str
) -> dict[str, str]:
    """`edgeperf_model_source` (`stand-in` or `file`), `edgeperf_size`, `edgeperf_precision` (a file is
    recorded as full size, fp32), `edgeperf_model_sha256` and `edgeperf_division`, in that order."""
    return {
        "edgeperf_model_source": "file" if from_file else "stand-in",
        "edgeperf_size": "full" if from_file else size,
        "edgeperf_precision": "fp32" if from_file else precision,
        "edgeperf_model_sha256": sha256,
        "edgeperf_division": division,
    }


@dataclass(frozen=True, slots=True, kw_only=True)
class OnnxModelWriter:
    """`write_model` of a benchmark served as one ONNX graph: `<model_dir>/config.pbtxt` and
    `<model_dir>/1/model.onnx`, the stand-in or the official file.

    Call it as `writer(model_dir, size=..., from_file=..., precision=...)`. The config's parameters
    record where the model came from (`provenance_parameters`); division is `closed` only for a file
    whose sha256 is `reference_sha256`.

    Raises (from a call):
        DatasetError: `from_file` does not exist.
        ModelMismatch: `from_file` lacks the spec's tensors (names in order, types, shapes).
    """

    benchmark: str
    """Name in the registry, recorded as `edgeperf_benchmark`."""
    label: str
    """Name in error messages ("ResNet50")."""
    tensors: Callable[[Size], tuple[tuple[TensorSpec, ...], tuple[TensorSpec, ...]]]
    """The model's inputs and outputs at a size (per sample when `max_batch_size` is not None)."""
    standin: Callable[[Size, Precision], bytes]
    """The serialized stand-in of a size and precision."""
    reference_sha256: str | None
    max_batch_size: Mapping[Size, int] | None = None
    """Per size; None serves the graph as it is (max_batch_size 0, full shapes in the spec)."""
    max_queue_delay_us: int | None = None
    """The dynamic batching window; None: no dynamic_batching."""

    def __call__(
        self,
        model_dir: Path,
        *,
        size: Size = "full",
        from_file: Path | None = None,
        precision: Precision = "fp32",
    ) -> None:
        target = model_dir / "1" / "model.onnx"
        if from_file is None:
            sha256 = save_model(onnx.load_from_string(self.standin(size, precision)), target)
            division = "open"
        else:
            size, precision = "full", "fp32"  # the official file is the full-size FP32 model
            if not from_file.is_file():
                raise DatasetError(f"{from_file}: no such model file")
            check_file_against_spec(
                from_file, *self.tensors("full"), model=self.label, batched=self.max_batch_size is not None
            )
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(from_file, target)
            sha256 = file_sha256(target)
            division = "closed" if sha256 == self.reference_sha256 else "open"
        inputs, outputs = self.tensors(size)
        provenance = provenance_parameters(
            from_file=from_file is not None, size=size, precision=precision, sha256=sha256, division=division
        )
        text = config_pbtxt(
            name=model_dir.name,
            max_batch_size=0 if self.max_batch_size is None else self.max_batch_size[size],
            inputs=tensor_decls(inputs),
            outputs=tensor_decls(outputs),
            max_queue_delay_us=self.max_queue_delay_us,
            parameters={"edgeperf_benchmark": self.benchmark, **provenance},
        )
        (model_dir / "config.pbtxt").write_text(text)


def tensor_decls(tensors: Sequence[TensorSpec]) -> list[TensorDecl]:
    """The spec's tensors as declarations (shapes as the spec gives them)."""
    return [TensorDecl(name=t.name, datatype=t.datatype, shape=t.shape) for t in tensors]


def check_file_against_spec(
    path: Path,
    inputs: Sequence[TensorSpec],
    outputs: Sequence[TensorSpec],
    *,
    model: str,
    batched: bool,
) -> None:
    """The official file declares the spec's tensors: names in the spec's order, types, and shapes.

    With `batched` the spec's shapes are per sample and the file's leading (batch) dimension is not
    compared; -1 on either side matches any size, and a file without a declared shape fits any.

    Raises:
        ModelMismatch: a name, type or shape differs (the message names the file and the tensor).
    """
    declared = check_model_io(path)
    for kind, got, want in (("input", declared.inputs, inputs), ("output", declared.outputs, outputs)):
        if [t.name for t in got] != [t.name for t in want]:
            raise ModelMismatch(
                f"{path}: {kind}s are {[t.name for t in got]}, the {model} spec wants {[t.name for t in want]}"
            )
        for g, w in zip(got, want, strict=True):
            shape = g.shape[1:] if batched else g.shape
            fits = not g.known_rank or (
                len(shape) == len(w.shape)
                and all(a == b or -1 in (a, b) for a, b in zip(shape, w.shape, strict=True))
            )
            if g.datatype != w.datatype or not fits:
                wanted = f"[N, {', '.join(map(str, w.shape))}]" if batched else str(list(w.shape))
                raise ModelMismatch(
                    f"{path}: {kind} {g.name!r} is {g.datatype} {list(g.shape)}, the spec wants {w.datatype} {wanted}"
                )
