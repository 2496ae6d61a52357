"""Writes one torch module as an ONNX file of the bundle contract, at any size.

torch.onnx.export spills a model over protobuf's 2 GB limit into one file per tensor; here the graph is
re-saved with every weight in one `model.onnx_data` beside `model.onnx` (Optimum's layout) when it
is that large, or always when asked.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import onnx
import torch

from ..onnx_export import OPSET, ComponentExport, set_output_dims
from ..onnx_tools.graph_edit import float16_interface, float16_weights

EXTERNAL_DATA = "model.onnx_data"
PROTOBUF_LIMIT = 2**31 - 1
# A little under protobuf's limit: the graph's nodes and names need room too.
EXTERNAL_ABOVE_BYTES = 1_800_000_000


def weight_bytes(model: onnx.ModelProto) -> int:
    return sum(len(init.raw_data) or init.ByteSize() for init in model.graph.initializer)


def write_onnx(component: ComponentExport, path: Path, external_data: bool = False, fp16: bool = False) -> list[str]:
    """Exports `component` to `path`; returns the external data files written beside it (none or one).

    Only the batch axis is dynamic; other output dims are written as the sizes the module gives.
    With `fp16` weights are stored as float16 and every float input and output is float16, as
    Optimum's `--dtype fp16` exports declare them; the body reads the weights through Casts.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    module = component.module.eval()
    with torch.no_grad():
        outputs = module(*component.example_inputs)
    outputs = (outputs,) if isinstance(outputs, torch.Tensor) else outputs
    names = component.input_names + component.output_names
    with tempfile.TemporaryDirectory(dir=path.parent) as tmp:
        raw = Path(tmp) / "model.onnx"
        torch.onnx.export(module, component.example_inputs, str(raw), input_names=list(component.input_names),
                          output_names=list(component.output_names), dynamic_axes={n: {0: "batch"} for n in names},
                          opset_version=OPSET, do_constant_folding=True)
        model = onnx.load(str(raw))  # pulls in any per-tensor files torch spilled
    set_output_dims(model, tuple(outputs))
    if fp16:
        float16_weights(model.graph)
        float16_interface(model)
    for stale in (path, path.parent / EXTERNAL_DATA):
        stale.unlink(missing_ok=True)
    if external_data or weight_bytes(model) > EXTERNAL_ABOVE_BYTES:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location=EXTERNAL_DATA, size_threshold=1024)
        written = [EXTERNAL_DATA] if (path.parent / EXTERNAL_DATA).exists() else []
    else:
        onnx.save_model(model, str(path))
        written = []
    onnx.checker.check_model(str(path))
    return written
