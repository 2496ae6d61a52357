"""Reading checkpoint weights: .safetensors (one file or sharded), or .bin written by torch.save.

The safetensors format, read here without its package: an unsigned 64-bit little-endian header
length N, N bytes of JSON ({name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {...}}),
then the tensors' bytes, offsets counted from the end of the header.
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .errors import CheckpointError

_SAFETENSORS_DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16, "BF16": torch.bfloat16,
    "I64": torch.int64, "I32": torch.int32, "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}


def read_safetensors(path: Path) -> dict[str, torch.Tensor]:
    """Every tensor of one .safetensors file, memory-mapped then copied out (the file stays closed)."""
    with open(path, "rb") as f:
        head = f.read(8)
        if len(head) != 8:
            raise CheckpointError(f"{path}: not a safetensors file (shorter than its 8-byte header length)")
        (length,) = struct.unpack("<Q", head)
        try:
            header = json.loads(f.read(length))
        except (UnicodeDecodeError, json.JSONDecodeError) as error:
            raise CheckpointError(f"{path}: the safetensors header is not JSON ({error})") from None
    data = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    tensors: dict[str, torch.Tensor] = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = _SAFETENSORS_DTYPES.get(entry.get("dtype"))
        if dtype is None:
            raise CheckpointError(f"{path}: tensor {name!r} has dtype {entry.get('dtype')!r}, which stepframe does not read")
        begin, end = entry["data_offsets"]
        shape = entry["shape"]
        raw = torch.frombuffer(bytearray(data[begin:end]), dtype=torch.uint8) if end > begin else torch.empty(0, dtype=torch.uint8)
        count = int(np.prod(shape)) if shape else 1
        if raw.numel() != count * torch.empty((), dtype=dtype).element_size():
            raise CheckpointError(f"{path}: tensor {name!r} has {raw.numel()} bytes for shape {shape} {entry['dtype']}")
        tensors[name] = raw.view(dtype).reshape(shape)
    return tensors


def write_safetensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    """The inverse of read_safetensors, one tensor at a time (a 3.4 GB UNet is never copied whole).

    Tests and the random SD-shaped benchmark checkpoints are written with it; real checkpoints come
    from the libraries.
    """
    names = {v: k for k, v in _SAFETENSORS_DTYPES.items()}
    header, offset = {}, 0
    for name, tensor in tensors.items():
        size = tensor.numel() * tensor.element_size()
        header[name] = {"dtype": names[tensor.dtype], "shape": list(tensor.shape), "data_offsets": [offset, offset + size]}
        offset += size
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for tensor in tensors.values():
            if tensor.numel():
                f.write(tensor.detach().contiguous().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())


def read_weights(folder: Path, stem: str) -> dict[str, torch.Tensor]:
    """A component's weights from `folder`, under the file names the libraries write.

    `stem` is "diffusion_pytorch_model" (diffusers) or "model" (transformers); the first of
    STEM.safetensors, STEM.safetensors.index.json (shards), STEM.bin, STEM.bin.index.json wins.
    """
    for single, reader in ((folder / f"{stem}.safetensors", read_safetensors), (folder / f"{stem}.bin", _read_bin)):
        if single.exists():
            return reader(single)
        index = single.with_name(f"{single.name}.index.json")
        if index.exists():
            return _read_sharded(index, reader)
    raise CheckpointError(f"{folder}: no weights ({stem}.safetensors, {stem}.safetensors.index.json, {stem}.bin or {stem}.bin.index.json)")


def _read_bin(path: Path) -> dict[str, torch.Tensor]:
    state = torch.load(path, map_location="cpu")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(f"{path}: not a state dict of tensors")
    return state


def _read_sharded(index: Path, reader) -> dict[str, torch.Tensor]:
    weight_map = json.loads(index.read_text()).get("weight_map")
    if not isinstance(weight_map, dict):
        raise CheckpointError(f"{index}: has no weight_map")
    tensors: dict[str, torch.Tensor] = {}
    for shard in sorted(set(weight_map.values())):
        path = index.parent / shard
        if not path.exists():
            raise CheckpointError(f"{index}: shard {shard} is missing")
        for name, tensor in reader(path).items():
            if weight_map.get(name) != shard:
                raise CheckpointError(f"{path}: holds {name!r}, which {index.name} places in {weight_map.get(name)}")
            tensors[name] = tensor
    missing = sorted(set(weight_map) - set(tensors))
    if missing:
        raise CheckpointError(f"{index}: keys listed but in no shard: {', '.join(missing[:5])}")
    return tensors


def load_exact(module: nn.Module, state: dict[str, torch.Tensor], source: str, ignorable: tuple[str, ...] = ()) -> None:
    """Loads `state` into `module`, refusing any missing or unexpected key and any shape that differs.

    `ignorable` names keys older library versions wrote that carry nothing the model needs
    (`text_model.embeddings.position_ids`); they are dropped, not refused. Weights are cast to the
    module's dtype.
    """
    own = module.state_dict()
    state = {k: v for k, v in state.items() if k not in ignorable or k in own}
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    if missing:
        raise CheckpointError(f"{source}: missing key {missing[0]!r}" + (f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""))
    if unexpected:
        raise CheckpointError(f"{source}: unexpected key {unexpected[0]!r}" + (f" (and {len(unexpected) - 1} more)" if len(unexpected) > 1 else ""))
    for key, tensor in state.items():
        if tuple(tensor.shape) != tuple(own[key].shape):
            raise CheckpointError(f"{source}: key {key!r} has shape {list(tensor.shape)}, the config gives {list(own[key].shape)}")
    module.load_state_dict({k: v.to(own[k].dtype) for k, v in state.items()}, strict=True)
