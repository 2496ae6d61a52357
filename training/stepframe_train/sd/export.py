"""Exports a stepframe bundle from a diffusers SD folder, a CLIP vision folder and (optionally) a fine-tuning run.

    npm run sd:export -- --base SD_DIR --image-encoder CLIP_DIR [--run RUN_DIR] --out MODELS_DIR --name NAME [--fp16] [--external-data]

Without --run it writes the base model's text-only baseline. The bundle is self-contained, in
Optimum's layout (text_encoder/, image_encoder/, vae_encoder/, vae_decoder/, unet/, fuser/,
tokenizer/, scheduler/, feature_extractor/), with stepframe.json recording every file's sha256,
external data included (docs/model-bundle.md, docs/real-sd.md).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..manifest import build_manifest
from ..onnx_export import ComponentExport, tensor_specs
from ..parity import PARITY_FILE, write_parity
from ..stack import parameter_count
from .folders import ClipVision, StableDiffusion, load_clip_vision, load_stable_diffusion
from .onnx_writer import write_onnx
from .run_checkpoint import load_run
from .stack import FuserShape, pad_token_id, pooled_image

# The paper's sampling: DDPM, 50 steps, guidance 7.5. Its fine-tuning drops text and image together,
# so one guidance scale (two rows).
PAPER_DEFAULTS = {"scheduler": "ddpm", "num_inference_steps": 50, "guidance_scale": 7.5, "image_guidance_scale": 1.0}
TOKENIZER_FILES = ("vocab.json", "merges.txt", "special_tokens_map.json", "tokenizer_config.json")


class _Call(nn.Module):
    """A module whose forward is `call(module, *inputs)`: what torch.onnx.export traces, with the contract's outputs."""

    def __init__(self, module: nn.Module, call):
        super().__init__()
        self.module = module
        self.call = call

    def forward(self, *inputs):
        return self.call(self.module, *inputs)


def component_exports(sd: StableDiffusion, vision: ClipVision | None, fuser: nn.Module | None, shape: FuserShape | None) -> list[ComponentExport]:
    """What the bundle holds, each with batch-2 example inputs and the contract's tensor names."""
    b, size = 2, sd.image_size
    latent = sd.unet.config.sample_size
    channels = sd.vae.config.latent_channels
    ids = torch.full((b, 77), 49407, dtype=torch.int64)
    ids[:, 0] = 49406
    exports = [
        ComponentExport("text_encoder", _Call(sd.text_encoder, lambda m, ids: m(ids)[:2]), (ids,), ("input_ids",), ("last_hidden_state", "pooler_output")),
        ComponentExport("vae_encoder", _Call(sd.vae, lambda m, sample: m.latent_parameters(sample)), (torch.zeros(b, 3, size, size),), ("sample",), ("latent_parameters",)),
        ComponentExport("vae_decoder", _Call(sd.vae, lambda m, latents: m.decode(latents)), (torch.zeros(b, channels, latent, latent),), ("latent_sample",), ("sample",)),
        ComponentExport("unet", sd.unet, (torch.zeros(b, channels, latent, latent), torch.tensor([999, 1], dtype=torch.int64),
                                          torch.zeros(b, 77, sd.unet.config.cross_attention_dim)),
                        ("sample", "timestep", "encoder_hidden_states"), ("out_sample",)),
    ]
    if vision is not None and fuser is not None and shape is not None:
        v = vision.model.config
        pooled_name = "image_embeds" if v.with_projection else "pooler_output"
        exports.append(ComponentExport("image_encoder", _Call(vision.model, lambda m, pixels: _hidden_and_pooled(m(pixels))), (torch.zeros(b, 3, v.image_size, v.image_size),),
                                       ("pixel_values",), ("last_hidden_state", pooled_name)))
        exports.append(ComponentExport("fuser", _Call(fuser, lambda m, *tokens: m(*tokens)), (
            torch.zeros(b, shape.text_tokens, shape.text_dim), torch.zeros(b, shape.text_dim),
            torch.zeros(b, shape.image_tokens, shape.image_dim), torch.zeros(b, shape.image_pooled_dim)),
            ("text_hidden_states", "text_pooled", "image_hidden_states", "image_pooled"), ("encoder_hidden_states",)))
    return exports


def _hidden_and_pooled(outputs):
    """The vision tower's last_hidden_state and its pooled output as the contract names it (pooled_image)."""
    return outputs[0], pooled_image(outputs)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 24), b""):
            digest.update(chunk)
    return digest.hexdigest()


def apply_run(sd: StableDiffusion, run: dict[str, Any]) -> tuple[nn.Module, FuserShape]:
    """Loads the run's UNet parameters over the base's and builds its fuser; refuses a run made on another base."""
    shape = FuserShape(**run["fuser_shape"])
    unet_state = sd.unet.state_dict()
    for key, tensor in run["unet"].items():
        if key not in unet_state or unet_state[key].shape != tensor.shape:
            raise ValueError(f"the run's UNet parameter {key!r} does not fit this base's UNet: was the run fine-tuned from another --base?")
    sd.unet.load_state_dict({**unet_state, **run.pop("unet")})  # popped: its tensors need not outlive the load
    fuser = shape.build()
    fuser.load_state_dict(run["fuser"])
    return fuser.eval(), shape


def export_bundle(base: Path, image_encoder: Path | None, run_dir: Path | None, out: Path, name: str, *, fp16: bool = False,
                  external_data: bool = False, parity_seed: int | None = None, log=print) -> Path:
    started = time.time()
    sd = load_stable_diffusion(base)
    fuser, shape, run = None, None, None
    if run_dir is not None:
        run = load_run(run_dir)
        fuser, shape = apply_run(sd, run)
        if shape.kind == "baseline":
            fuser = None
    vision = None
    if fuser is not None:
        if image_encoder is None:
            raise ValueError(f"the run's fuser ({shape.kind}) reads the previous image: give --image-encoder")
        vision = load_clip_vision(image_encoder)
    bundle = out / name
    if bundle.exists():
        shutil.rmtree(bundle)
    components: dict[str, dict] = {}
    for component in component_exports(sd, vision, fuser, shape):
        path = bundle / component.name / "model.onnx"
        log(f"export {component.name} ({parameter_count(component.module) / 1e6:.1f}M parameters)")
        extra = write_onnx(component, path, external_data=external_data, fp16=fp16)
        if parity_seed is not None and not fp16:
            write_parity(component, path.parent / PARITY_FILE, parity_seed)
            _parity_relative_tolerance(path.parent / PARITY_FILE)
        components[component.name] = {
            "path": f"{component.name}/model.onnx", "sha256": _sha256(path), "parameters": parameter_count(component.module),
            **({"external_data": [{"path": f, "sha256": _sha256(path.parent / f)} for f in extra]} if extra else {}),
            **tensor_specs(path),
        }
    tokenizer = bundle / "tokenizer"
    tokenizer.mkdir(parents=True)
    for file in TOKENIZER_FILES:
        if (sd.tokenizer_dir / file).exists():
            shutil.copy(sd.tokenizer_dir / file, tokenizer / file)
    (bundle / "scheduler").mkdir()
    (bundle / "scheduler" / "scheduler_config.json").write_text(json.dumps(sd.scheduler_config, indent=2) + "\n")
    if vision is not None:
        (bundle / "feature_extractor").mkdir()
        (bundle / "feature_extractor" / "preprocessor_config.json").write_text(json.dumps(vision.preprocessor_config, indent=2) + "\n")
    manifest = build_manifest(
        name=name, fuser_kind=shape.kind if fuser is not None else "baseline", image_size=sd.image_size,
        latent_channels=sd.vae.config.latent_channels, downscale=sd.vae.config.downscale, scaling_factor=sd.vae.config.scaling_factor,
        components=components, tokenizer_path="tokenizer", feature_extractor_path="feature_extractor" if vision is not None else None,
        image_guidance=False, defaults=dict(PAPER_DEFAULTS), pad_token_id=pad_token_id(sd.tokenizer_dir),
        provenance={"created_by": "stepframe_train.sd.export", "base": str(base.resolve()),
                    "image_encoder": str(image_encoder.resolve()) if vision is not None else None,
                    "run": {"dir": str(run_dir.resolve()), "step": run["step"], "train_unet": run["train_unet"], "losses": run["losses"],
                            "settings": run["settings"]} if run is not None else None,
                    "dtype": "float16" if fp16 else "float32", "torch_version": torch.__version__.split("+")[0]},
    )
    (bundle / "stepframe.json").write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    log(f"wrote {bundle} in {time.time() - started:.0f}s")
    return bundle


def _parity_relative_tolerance(path: Path) -> None:
    """The issue's bound: 1e-4 of each output's largest magnitude (real-size outputs are not unit-scaled)."""
    parity = json.loads(path.read_text())
    parity["tolerance"] = 1e-4
    parity["tolerance_relative_to_max"] = True
    path.write_text(json.dumps(parity))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="npm run sd:export --", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--base", type=Path, required=True, help="diffusers Stable Diffusion folder (model_index.json, unet/, vae/, ...)")
    p.add_argument("--image-encoder", type=Path, help="transformers CLIP vision folder (needed for an image-conditioned run)")
    p.add_argument("--run", type=Path, help="fine-tuning run folder (npm run sd:finetune); without it: the base's text-only baseline")
    p.add_argument("--out", type=Path, required=True, help="models folder to write the bundle into")
    p.add_argument("--name", required=True, help="bundle name (its folder, and the model clients ask for)")
    p.add_argument("--fp16", action="store_true", help="float16 weights and float16 inputs and outputs (Optimum's --dtype fp16 interface)")
    p.add_argument("--external-data", action="store_true", help="weights in model.onnx_data even below 2 GB")
    p.add_argument("--parity", type=int, metavar="SEED", help="also write parity.json per component (torch outputs the TypeScript suite replays)")
    args = p.parse_args(argv)
    try:
        export_bundle(args.base, args.image_encoder, args.run, args.out, args.name, fp16=args.fp16, external_data=args.external_data,
                      parity_seed=args.parity)
    except (ValueError, FileNotFoundError) as error:
        print(f"sd:export: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
