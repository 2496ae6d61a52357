"""Writes a set of bundles that share their encoders and VAE (stored once under `shared/`)."""
from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import torch
from torch import nn

from .manifest import SD1_SCHEDULER_CONFIG, build_manifest, preprocessor_config
from .onnx_export import ComponentExport, component_exports, export_onnx, tensor_specs
from .parity import PARITY_FILE, write_parity
from .stack import Stack, config_for_fuser, parameter_count, weights_digest

SHARED_DIR = "shared"
SHARED_COMPONENTS = ("text_encoder", "image_encoder", "vae_encoder", "vae_decoder")
# The sampling defaults each trained bundle's manifest declares. Text guidance is 4, not the paper's 7.5: chosen on 48 val
# recipes (experiments.guidance_sweep, docs/experiments.md), where 4 scored higher on the text probe, lower on style error and
# higher in PSNR than 7.5 for every bundle, the baseline included; at 7.5 these small models over-saturate.
DEFAULTS = {"scheduler": "ddpm", "num_inference_steps": 50, "guidance_scale": 4.0, "image_guidance_scale": 1.5}
# Where a trained bundle's own default differs (docs/experiments.md, "Which image guidance should each bundle default to?"), each chosen
# on 48 val recipes after 4000 fine-tuning steps (text probe / style error; half the baseline's error is 52.2):
# - image_pooling at 1.0: 93.8% / 58.5, against 88.4% / 55.9 at 1.5 and 75.3% / 56.7 at 2.5. It is the fuser that
#   follows the text best, and more image guidance buys it little style: it passes on colours but not the vessel's shape.
# - attend_to_image at 2.0: 82.2% / 48.3, against 84.9% / 51.7 at 1.5 (on the line) and 78.1% / 46.8 at 2.5.
# - anchor_decoupled (beyond the paper, experiments.sequence_fusers) at text guidance 5 and image guidance 1: on 32 val recipes the best
#   text probe among the settings whose style error stays at most 40 (issue 35's Pareto line), 0.949 / 32.9, against 0.908 / 24.0 at
#   4 and 1.5 (docs/results.md, "Beyond the paper"). Image guidance 1 also runs two UNet rows instead of three.
FUSER_DEFAULTS = {"image_pooling": {"image_guidance_scale": 1.0}, "attend_to_image": {"image_guidance_scale": 2.0},
                  "anchor_decoupled": {"guidance_scale": 5.0, "image_guidance_scale": 1.0}}


def trained_defaults(fuser_kind: str) -> dict[str, Any]:
    """The sampling defaults a trained bundle of `fuser_kind` declares in its manifest."""
    return {**DEFAULTS, **FUSER_DEFAULTS.get(fuser_kind, {})}


@dataclass
class BundleSpec:
    """One bundle: its own UNet and fuser on top of the shared stack."""

    name: str
    fuser_kind: str
    unet: nn.Module
    fuser: nn.Module
    image_guidance: bool = False
    defaults: dict[str, Any] = field(default_factory=lambda: dict(DEFAULTS))
    provenance: dict[str, Any] = field(default_factory=dict)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _component_entry(component: ComponentExport, model_path: Path, bundle_dir: Path) -> dict:
    weights = component.module
    return {
        "path": os.path.relpath(model_path, bundle_dir),
        "sha256": _sha256(model_path),
        "parameters": parameter_count(weights),
        "weights_sha256": weights_digest(weights),
        **tensor_specs(model_path),
    }


def _write_json(path: Path, value: Any) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n")


def write_bundles(
    out: Path,
    shared: Stack,
    bundles: list[BundleSpec],
    tokenizer_dir: Path,
    provenance: dict[str, Any],
    parity_seed: int | None = None,
    shared_name: str = SHARED_DIR,
) -> list[Path]:
    """Export `shared`'s encoders and VAE once (to OUT/`shared_name`), then one folder per bundle; returns the bundle folders.

    Bundles on other encoders go to the same OUT through calls with another `shared_name` (experiments.encoder_grid).
    """
    out = out.resolve()
    shared_dir = out / shared_name
    exports = {c.name: c for c in component_exports(shared, include_fuser=False)}
    shared_paths: dict[str, Path] = {}
    for name in SHARED_COMPONENTS:
        path = shared_dir / name / "model.onnx"
        export_onnx(exports[name], path)
        if parity_seed is not None:
            write_parity(exports[name], path.parent / PARITY_FILE, parity_seed)
        shared_paths[name] = path
    feature_extractor = shared_dir / "feature_extractor" / "preprocessor_config.json"
    _write_json(feature_extractor, preprocessor_config(shared.config.image.image_size))

    written = []
    for index, spec in enumerate(bundles):
        bundle_dir = out / spec.name
        cfg = config_for_fuser(shared.config, spec.fuser_kind)
        stack = replace(shared, config=cfg, unet=spec.unet, fuser=spec.fuser)
        has_fuser = spec.fuser_kind != "baseline"
        own = {c.name: c for c in component_exports(stack, include_fuser=has_fuser)}
        components: dict[str, dict] = {}
        for name in ("text_encoder", "vae_encoder", "vae_decoder") + (("image_encoder",) if has_fuser else ()):
            components[name] = _component_entry(own[name], shared_paths[name], bundle_dir)
        for name in ("unet", "fuser") if has_fuser else ("unet",):
            path = bundle_dir / name / "model.onnx"
            export_onnx(own[name], path)
            if parity_seed is not None:
                write_parity(own[name], path.parent / PARITY_FILE, parity_seed + 1 + index)
            components[name] = _component_entry(own[name], path, bundle_dir)
        _write_json(bundle_dir / "scheduler" / "scheduler_config.json", SD1_SCHEDULER_CONFIG)
        manifest = build_manifest(
            name=spec.name,
            fuser_kind=spec.fuser_kind,
            image_size=cfg.image.image_size,
            latent_channels=cfg.vae.latent_channels,
            downscale=cfg.vae.downscale,
            scaling_factor=cfg.vae.scaling_factor,
            components=components,
            tokenizer_path=os.path.relpath(tokenizer_dir.resolve(), bundle_dir),
            feature_extractor_path=os.path.relpath(feature_extractor.parent, bundle_dir) if has_fuser else None,
            image_guidance=spec.image_guidance,
            defaults=spec.defaults,
            provenance={**provenance, **spec.provenance, "torch_version": torch.__version__.split("+")[0], "stack": cfg.to_dict()},
        )
        _write_json(bundle_dir / "stepframe.json", manifest)
        written.append(bundle_dir)
    return written
