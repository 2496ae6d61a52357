"""Input/output pairs computed by PyTorch, which the TypeScript suite replays through onnxruntime-node.

Python onnxruntime is not available here, so this cross-language check is the export's real test.
"""
from __future__ import annotations

import base64
import json
from pathlib import Path

import numpy as np
import torch

from .onnx_export import ComponentExport

PARITY_FILE = "parity.json"
# Rows at different denoising steps share one UNet call, so the batch-3 case mixes timesteps.
MIXED_TIMESTEPS = (999, 500, 1)


def _encode(tensor: torch.Tensor) -> dict:
    array = tensor.detach().cpu().contiguous().numpy()
    dtype = {np.dtype("float32"): "float32", np.dtype("int64"): "int64"}[array.dtype]
    return {"dtype": dtype, "dims": list(array.shape), "data": base64.b64encode(array.astype(array.dtype.newbyteorder("<")).tobytes()).decode()}


def _case_inputs(component: ComponentExport, batch: int, generator: torch.Generator) -> tuple[torch.Tensor, ...]:
    inputs = []
    for name, example in zip(component.input_names, component.example_inputs):
        shape = (batch, *example.shape[1:])
        if name == "input_ids":
            ids = torch.randint(0, 49406, shape, generator=generator)
            ids[:, 0] = 49406
            for row in range(batch):  # a different prompt length per row, EOS-padded as SD does
                end = 3 + 5 * row
                ids[row, end:] = 49407
            inputs.append(ids)
        elif name == "timestep":
            inputs.append(torch.tensor(MIXED_TIMESTEPS[:batch] if batch > 1 else (999,), dtype=torch.int64))
        elif name in ("sample", "pixel_values") and component.name != "unet":
            inputs.append(torch.rand(shape, generator=generator) * 2 - 1)
        else:
            inputs.append(torch.randn(shape, generator=generator))
    return tuple(inputs)


def write_parity(component: ComponentExport, path: Path, seed: int) -> None:
    generator = torch.Generator().manual_seed(seed)
    cases = []
    for batch in (1, 3):
        inputs = _case_inputs(component, batch, generator)
        with torch.no_grad():
            outputs = component.module.eval()(*inputs)
        if isinstance(outputs, torch.Tensor):
            outputs = (outputs,)
        cases.append(
            {
                "name": f"batch{batch}",
                "inputs": {n: _encode(t) for n, t in zip(component.input_names, inputs)},
                "outputs": {n: _encode(t) for n, t in zip(component.output_names, outputs)},
            }
        )
    path.write_text(json.dumps({"component": component.name, "tolerance": 1e-4, "cases": cases}))
