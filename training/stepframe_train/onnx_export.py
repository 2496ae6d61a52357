"""Exports one PyTorch component to ONNX with SD/Optimum tensor names and a dynamic batch axis."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import onnx
import torch
from torch import nn

from .config import TEXT_MAX_LENGTH, StackConfig
from .stack import Stack

OPSET = 17
_ONNX_DTYPES = {onnx.TensorProto.FLOAT: "float32", onnx.TensorProto.INT64: "int64", onnx.TensorProto.FLOAT16: "float16", onnx.TensorProto.INT32: "int32"}


@dataclass
class ComponentExport:
    """What to export: the module, example inputs (batch 2) and SD-style tensor names."""

    name: str
    module: nn.Module
    example_inputs: tuple[torch.Tensor, ...]
    input_names: tuple[str, ...]
    output_names: tuple[str, ...]


class _VaeEncoderGraph(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.encoder = vae.encoder

    def forward(self, sample):
        return self.encoder(sample)


class _FuserGraph(nn.Module):
    """Flattens the fuser call so ONNX sees four named inputs (six for a fuser that also sees the first frame)."""

    def __init__(self, fuser):
        super().__init__()
        self.fuser = fuser

    def forward(self, text_hidden_states, text_pooled, image_hidden_states, image_pooled, first_image_hidden_states=None, first_image_pooled=None):
        return self.fuser(text_hidden_states, text_pooled, image_hidden_states, image_pooled, first_image_hidden_states, first_image_pooled)


def component_exports(stack: Stack, include_fuser: bool = True) -> list[ComponentExport]:
    cfg: StackConfig = stack.config
    b = 2
    size = cfg.image.image_size
    latent = size // cfg.vae.downscale
    ids = torch.full((b, TEXT_MAX_LENGTH), 49407, dtype=torch.int64)
    ids[:, 0] = 49406
    exports = [
        ComponentExport("text_encoder", stack.text_encoder, (ids,), ("input_ids",), ("last_hidden_state", "pooler_output")),
        ComponentExport(
            "image_encoder", stack.image_encoder, (torch.zeros(b, 3, size, size),), ("pixel_values",), ("last_hidden_state", "pooler_output")
        ),
        ComponentExport("vae_encoder", _VaeEncoderGraph(stack.vae), (torch.zeros(b, 3, size, size),), ("sample",), ("latent_parameters",)),
        ComponentExport(
            "vae_decoder", stack.vae.decoder, (torch.zeros(b, cfg.vae.latent_channels, latent, latent),), ("latent_sample",), ("sample",)
        ),
        ComponentExport(
            "unet",
            stack.unet,
            (
                torch.zeros(b, cfg.vae.latent_channels, latent, latent),
                torch.tensor([999, 1], dtype=torch.int64),
                torch.zeros(b, TEXT_MAX_LENGTH + cfg.unet.image_context_tokens, cfg.unet.cross_attention_dim),
            ),
            ("sample", "timestep", "encoder_hidden_states"),
            ("out_sample",),
        ),
    ]
    if include_fuser:
        image = (torch.zeros(b, cfg.image.tokens, cfg.image.width), torch.zeros(b, cfg.image.width))
        first = stack.fuser.uses_first_frame
        exports.append(
            ComponentExport(
                "fuser",
                _FuserGraph(stack.fuser),
                (torch.zeros(b, TEXT_MAX_LENGTH, cfg.text.width), torch.zeros(b, cfg.text.width)) + image + (image if first else ()),
                ("text_hidden_states", "text_pooled", "image_hidden_states", "image_pooled")
                + (("first_image_hidden_states", "first_image_pooled") if first else ()),
                ("encoder_hidden_states",),
            )
        )
    return exports


def export_onnx(component: ComponentExport, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    names = component.input_names + component.output_names
    torch.onnx.export(
        component.module.eval(),
        component.example_inputs,
        str(path),
        input_names=list(component.input_names),
        output_names=list(component.output_names),
        dynamic_axes={name: {0: "batch"} for name in names},
        opset_version=OPSET,
        do_constant_folding=True,
    )
    _name_output_dims(component, path)
    onnx.checker.check_model(str(path))


def _name_output_dims(component: ComponentExport, path: Path) -> None:
    """Replace the exporter's generated dim names (e.g. "Addlast_hidden_state_dim_1") by concrete sizes.

    Only the batch axis is dynamic; the loader checks the other dims against the manifest.
    """
    with torch.no_grad():
        outputs = component.module.eval()(*component.example_inputs)
    if isinstance(outputs, torch.Tensor):
        outputs = (outputs,)
    model = onnx.load(str(path))
    set_output_dims(model, outputs)
    onnx.save(model, str(path))


def set_output_dims(model: onnx.ModelProto, outputs: tuple[torch.Tensor, ...]) -> None:
    """Axis 0 of every output becomes "batch"; the others the sizes the module gave (`outputs`, in graph order)."""
    for value, tensor in zip(model.graph.output, outputs):
        dims = value.type.tensor_type.shape.dim
        for axis, size in enumerate(tensor.shape):
            if axis == 0:
                dims[axis].dim_param = "batch"
            else:
                dims[axis].dim_value = size


def tensor_specs(path: Path) -> dict[str, list[dict]]:
    """The inputs and outputs an ONNX file declares, as manifest entries (symbolic dims kept as names)."""
    graph = onnx.load(str(path), load_external_data=False).graph
    initializers = {init.name for init in graph.initializer}

    def spec(value) -> dict:
        tensor = value.type.tensor_type
        dims = [d.dim_param if d.dim_param else d.dim_value for d in tensor.shape.dim]
        return {"name": value.name, "dtype": _ONNX_DTYPES.get(tensor.elem_type, str(tensor.elem_type)), "shape": dims}

    return {
        "inputs": [spec(v) for v in graph.input if v.name not in initializers],
        "outputs": [spec(v) for v in graph.output],
    }
