"""`stepframe.json`: what a bundle holds and how the server must condition it. See docs/model-bundle.md."""
from __future__ import annotations

from typing import Any

FORMAT = "stepframe.bundle"
FORMAT_VERSION = 1
COMPONENTS = ("text_encoder", "image_encoder", "vae_encoder", "vae_decoder", "unet", "fuser")
REQUIRED_COMPONENTS = ("text_encoder", "vae_decoder", "unet")
NO_IMAGE_KINDS = ("zeros",)
UNCONDITIONAL_TEXT_KINDS = ("empty_prompt",)

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


def validate_manifest(m: Any) -> list[str]:
    """Every problem found, each naming the field. An empty list means the manifest is valid."""
    problems: list[str] = []

    def need(cond: bool, message: str) -> None:
        if not cond:
            problems.append(message)

    if not isinstance(m, dict):
        return ["manifest must be a JSON object"]
    need(m.get("format") == FORMAT, f"format must be {FORMAT!r}")
    need(m.get("format_version") == FORMAT_VERSION, f"format_version must be {FORMAT_VERSION}")
    need(isinstance(m.get("name"), str) and bool(m.get("name")), "name must be a non-empty string")
    fuser = m.get("fuser") or {}
    need(isinstance(fuser.get("kind"), str), "fuser.kind must be a string")
    image = m.get("image") or {}
    for key in ("height", "width"):
        need(isinstance(image.get(key), int) and image.get(key, 0) > 0, f"image.{key} must be a positive integer")
    latent = m.get("latent") or {}
    for key in ("channels", "downscale"):
        need(isinstance(latent.get(key), int) and latent.get(key, 0) > 0, f"latent.{key} must be a positive integer")
    need(isinstance(latent.get("scaling_factor"), (int, float)) and latent.get("scaling_factor", 0) > 0, "latent.scaling_factor must be positive")
    components = m.get("components") or {}
    for name in REQUIRED_COMPONENTS:
        need(name in components, f"components.{name} is required")
    for name, entry in components.items():
        need(name in COMPONENTS, f"components.{name} is not a known component ({', '.join(COMPONENTS)})")
        need(isinstance(entry, dict) and isinstance(entry.get("path"), str), f"components.{name}.path must be a string")
        for side in ("inputs", "outputs"):
            tensors = entry.get(side) if isinstance(entry, dict) else None
            need(isinstance(tensors, list) and all(isinstance(t, dict) and {"name", "dtype", "shape"} <= t.keys() for t in tensors),
                 f"components.{name}.{side} must list {{name, dtype, shape}}")
    if fuser.get("kind") not in (None, "baseline"):
        need("fuser" in components and "image_encoder" in components, "an image-conditioned bundle needs components.fuser and components.image_encoder")
    need(isinstance((m.get("tokenizer") or {}).get("path"), str), "tokenizer.path must be a string")
    conditioning = m.get("conditioning") or {}
    need((conditioning.get("first_step") or {}).get("kind") in NO_IMAGE_KINDS, f"conditioning.first_step.kind must be one of {NO_IMAGE_KINDS}")
    unconditional = conditioning.get("unconditional") or {}
    need((unconditional.get("text") or {}).get("kind") in UNCONDITIONAL_TEXT_KINDS, "conditioning.unconditional.text.kind must be 'empty_prompt'")
    need((unconditional.get("image") or {}).get("kind") in NO_IMAGE_KINDS, f"conditioning.unconditional.image.kind must be one of {NO_IMAGE_KINDS}")
    need(isinstance(conditioning.get("image_guidance"), bool), "conditioning.image_guidance must be a boolean")
    defaults = m.get("defaults") or {}
    need(isinstance(defaults.get("num_inference_steps"), int), "defaults.num_inference_steps must be an integer")
    need(isinstance(defaults.get("guidance_scale"), (int, float)), "defaults.guidance_scale must be a number")
    need(isinstance(defaults.get("scheduler"), str), "defaults.scheduler must be a string")
    need(isinstance(m.get("provenance"), dict), "provenance must be an object")
    return problems
