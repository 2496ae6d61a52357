"""Stable Diffusion and CLIP as their libraries define them (diffusers' UNet2DConditionModel and
AutoencoderKL, transformers' CLIP text and vision models): modules built from each folder's
config.json whose parameter names are the checkpoints' keys, the paper's fine-tuning on them, and
the export to a stepframe bundle. See docs/real-sd.md."""
