"""What train_all writes about its run: the contact sheet and the models folder's README."""
from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from ..bundle import DEFAULTS
from ..world.render import render_recipe


def contact_sheet(recipes, generated: dict) -> Image.Image:
    """Per recipe: the reference row, then one row per fuser; every row starts from the reference's first frame."""
    tile, label_w = 64, 118
    rows: list[tuple[str, list[np.ndarray]]] = []
    for recipe in recipes:
        reference = render_recipe(recipe)
        rows.append((f"#{recipe.recipe_id} reference", list(reference)))
        for name in generated:
            rows.append((f"  {name}", [reference[0], *generated[name][recipe.recipe_id]]))
        rows.append(("", []))
    width = label_w + 8 * tile
    sheet = Image.new("RGB", (width, len(rows) * (tile + 2)), "white")
    draw = ImageDraw.Draw(sheet)
    for r, (label, frames) in enumerate(rows):
        y = r * (tile + 2)
        draw.text((4, y + tile // 2 - 6), label, fill=(20, 20, 20))
        for c, frame in enumerate(frames):
            sheet.paste(Image.fromarray(frame), (label_w + c * tile, y))
    return sheet.resize((sheet.width * 2, sheet.height * 2), Image.NEAREST)


# train_all writes the paper's six; the two bundles beyond it (experiments.sequence_fusers) sit beside them in models/ and keep this section.
SEQUENCE_BUNDLES_SECTION = [
    "",
    "## Beyond the paper: anchor_concatenation (the default) and anchor_decoupled",
    "",
    "Two more bundles (issue 35) on encoders and an autoencoder of their own (`sequence-shared/`, a retrained stage 1-3 of the",
    "same pipeline), fine-tuned from that run's text-only UNet with the six's budget by `experiments.sequence_fusers`:",
    "",
    "- `anchor_concatenation`: concatenation over the step text, the previous frame and the sequence's first frame. The default",
    "  bundle (the lowest CLIP comparison on the first 32 val recipes, 0.348). Test: CLIP comparison 0.344, style error 23.6,",
    "  text probe 0.686.",
    "- `anchor_decoupled`: the 77 text tokens untouched, the previous and first frames' tokens on a decoupled cross-attention",
    "  (IP-Adapter's); defaults text guidance 5, image guidance 1 (chosen on val). Test: text probe 0.861, style error 35.6.",
    "",
    "```",
    "cd training && /usr/bin/python3 -m stepframe_train.train_all --runs RUNS --stop-after unet",
    "/usr/bin/python3 -m experiments.sequence_fusers --runs RUNS --out ../models --shared-name sequence-shared --fusers anchor_concatenation anchor_decoupled",
    "```",
    "",
    "Every figure and its command: docs/results.md, \"Trained fusers beyond the paper\".",
]


def write_models_readme(path: Path, report: dict) -> None:
    m = report["metrics"]
    lines = [
        "# Trained bundles",
        "",
        "Six bundles (one per fuser of the paper) trained on the synthetic recipe world, sharing one text encoder,",
        "image encoder and autoencoder (in `shared/`); each has its own fine-tuned UNet and fuser.",
        "",
        "Retrain everything from scratch (CPU, 2 cores):",
        "",
        "```",
        "cd training && /usr/bin/python3 -m stepframe_train.train_all --out ../models",
        "```",
        "",
        f"Wall time on 2 CPU cores, summed over the stages that produced these files: **{report['wall_seconds'] / 60:.0f} min** ({', '.join(f'{k} {v / 60:.1f} min' for k, v in report['timings'].items())}).",
        "Seeds (training/stepframe_train/pipeline/settings.py): " + ", ".join(f"{stage} {seed}" for stage, seed in report.get("seeds", {}).items()) + ".",
        f"VAE scaling factor (1/std of the latents): {report['scaling_factor']:.4f}.",
        "Fine-tuning's style-term weight per fuser (`--style-weight`; the baseline trains without the term): "
        + ", ".join(f"{k} {w:g}" for k, w in report["style_weights"].items()) + ".",
        "",
        "## Final losses (exponential moving averages at the last step)",
        "",
        "| stage | losses |",
        "| --- | --- |",
        *[f"| {k} | {', '.join(f'{n} {v:.4f}' for n, v in l.items())} |" for k, l in report["losses"].items()],
        "",
        f"## Quality on the test split ({report['eval_recipes']} recipes)",
        "",
        f"Autoencoder round trip on the held-out val split: **{report['losses'].get('refined_decoder', report['losses']['autoencoder'])['val_psnr']:.2f} dB** PSNR"
        + (f" (the jointly trained decoder, before the decoder stage: {report['losses']['autoencoder']['val_psnr']:.2f} dB)." if "refined_decoder" in report["losses"] else "."),
        "",
        f"Reference sampler (training/stepframe_train/reference_sampler.py) at each bundle's defaults: {DEFAULTS['num_inference_steps']} "
        f"{DEFAULTS['scheduler'].upper()} steps, text guidance {DEFAULTS['guidance_scale']:g};",
        f"the image-conditioned bundles add three-row guidance with image guidance {DEFAULTS['image_guidance_scale']:g} (InstructPix2Pix)"
        + "".join(f", {name} at {d['image_guidance_scale']:g}" for name, d in report["sampling"].items()
                  if d["image_guidance_scale"] != DEFAULTS["image_guidance_scale"])
        + "; the baseline uses two rows.",
        "Each sequence starts from the reference's first frame and generates the remaining steps, each conditioned on the",
        "previous generated frame. Text probe: the step's new ingredient colour covers at least half as many pixels of its",
        "region as in the autoencoder's reconstruction of the reference (and at least 6); the second column counts only the",
        "steps where the reconstruction itself passes. Style error: mean colour distance of table and vessel rim to the",
        "reference frame (RGB 0-255, lower is better).",
        "",
        "| row | text probe pass | on steps the reconstruction passes | style error | PSNR (dB) | frames |",
        "| --- | --- | --- | --- | --- | --- |",
        *[f"| {name} | {v['text_probe_pass'] * 100:.1f}% ({v['probed_steps']} steps) | {v['text_probe_pass_showable'] * 100:.1f}% ({v['showable_steps']} steps) "
          f"| {v['style_error']:.1f} | {v['psnr']:.2f} | {v['frames']} |" for name, v in m.items()],
        "",
        "contact-sheet.png (train_all --contact-sheet; beside this file by default) shows four test recipes: the reference row, then every bundle's sequence.",
    ]
    path.write_text("\n".join(lines + SEQUENCE_BUNDLES_SECTION) + "\n")
