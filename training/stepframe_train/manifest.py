"""`stepframe.json`: what a bundle holds and how the server must condition it. See docs/model-bundle.md."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

FORMAT = "stepframe.bundle"
FORMAT_VERSION = 1

# SD 1.x's noise schedule, as diffusers writes it; the paper samples with DDPM.
SD1_SCHEDULER_CONFIG: dict[str, Any] = {
    "_class_name": "DDPMScheduler",
    "_diffusers_version": "0.30.0",
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "thresholding": False,
    "timestep_spacing": "leading",
    "trained_betas": None,
    "variance_type": "fixed_small",
}

CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]


def preprocessor_config(image_size: int) -> dict[str, Any]:
    """CLIPImageProcessor's preprocessor_config.json for a square crop of `image_size`."""
    return {
        "crop_size": {"height": image_size, "width": image_size},
        "do_center_crop": True,
        "do_convert_rgb": True,
        "do_normalize": True,
        "do_rescale": True,
        "do_resize": True,
        "feature_extractor_type": "CLIPFeatureExtractor",
        "image_mean": CLIP_MEAN,
        "image_processor_type": "CLIPImageProcessor",
        "image_std": CLIP_STD,
        "resample": 3,
        "rescale_factor": 1 / 255,
        "size": {"shortest_edge": image_size},
    }


def build_manifest(
    *,
    name: str,
    fuser_kind: str,
    image_size: int,
    latent_channels: int,
    downscale: int,
    scaling_factor: float,
    components: dict[str, dict],
    tokenizer_path: str,
    feature_extractor_path: str | None,
    image_guidance: bool,
    defaults: dict[str, Any],
    provenance: dict[str, Any],
    pad_token_id: int = 49407,
) -> dict[str, Any]:
    manifest = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "name": name,
        "fuser": {"kind": fuser_kind},
        "image": {"height": image_size, "width": image_size, "channels": 3},
        "latent": {"channels": latent_channels, "downscale": downscale, "scaling_factor": scaling_factor},
        "components": components,
        "tokenizer": {"path": tokenizer_path, "max_length": 77, "pad_token_id": pad_token_id},
        "feature_extractor": {"path": feature_extractor_path} if feature_extractor_path else None,
        "scheduler": {"path": "scheduler/scheduler_config.json"},
        "conditioning": {
            "first_step": {"kind": "zeros"},
            "unconditional": {"text": {"kind": "empty_prompt"}, "image": {"kind": "zeros"}},
            "image_guidance": image_guidance,
        },
        "defaults": defaults,
        "provenance": provenance,
    }
    problems = validate_manifest(manifest)
    if problems:
        raise ValueError("invalid manifest: " + "; ".join(problems))
    return manifest


SCHEMA_FILE = Path(__file__).resolve().parents[2] / "schemas" / "stepframe-bundle.schema.json"


def validate_manifest(m: Any) -> list[str]:
    """Every problem found against schemas/stepframe-bundle.schema.json (the one definition the server
    checks with ajv too), each naming the field. An empty list means the manifest is valid."""
    from jsonschema import Draft7Validator  # Debian's python3-jsonschema; imported here so training runs without it

    validator = Draft7Validator(json.loads(SCHEMA_FILE.read_text()))
    problems = []
    for error in sorted(validator.iter_errors(m), key=lambda e: list(e.absolute_path)):
        path = ".".join(str(p) for p in error.absolute_path)
        if error.validator == "required":
            missing = error.message.split("'")[1]
            problems.append(f"{path + '.' if path else ''}{missing} is required")
        else:
            problems.append(f"{path or 'the manifest'}: {error.message}")
    return problems
