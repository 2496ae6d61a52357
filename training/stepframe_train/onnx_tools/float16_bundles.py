"""Turns written bundles into float16 exports in place, as Optimum's `--dtype fp16` lays them out.

Every model under the folder gets float16 weights and float16 float inputs and outputs (the body
computes in float32 behind Casts, so ONNX Runtime's CPU provider can run it), and every manifest
is updated to match: the tensors' dtypes and each component's sha256.
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path

import onnx

from .graph_edit import float16_interface, float16_weights


def convert_model(path: Path) -> None:
    model = onnx.load(str(path))
    float16_weights(model.graph)
    float16_interface(model)
    onnx.checker.check_model(model)
    onnx.save_model(model, str(path))


def convert_bundles(root: Path) -> list[Path]:
    """Converts every model.onnx below `root` once, then rewrites each stepframe.json beside them."""
    models = sorted(root.rglob("model.onnx"))
    for path in models:
        convert_model(path)
    for manifest_path in sorted(root.rglob("stepframe.json")):
        manifest = json.loads(manifest_path.read_text())
        for spec in manifest["components"].values():
            for tensor in [*spec.get("inputs", []), *spec.get("outputs", [])]:
                if tensor["dtype"] == "float32":
                    tensor["dtype"] = "float16"
            spec["sha256"] = hashlib.sha256((manifest_path.parent / spec["path"]).resolve().read_bytes()).hexdigest()
        manifest.setdefault("provenance", {})["dtype"] = "float16"
        manifest_path.write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return models
