"""The paper's fine-tuning on SD-shaped checkpoints (the tiny reference folder): every fuser kind trains, a
resumed run is the run, and the fusers are sized from the encoders' real widths."""
import json
import shutil
from pathlib import Path

import pytest
import torch

from stepframe_train.models.fusers import FUSER_KINDS
from stepframe_train.sd.finetune import FinetuneSettings, finetune
from stepframe_train.sd.folders import load_clip_vision, load_stable_diffusion
from stepframe_train.sd.run_checkpoint import load_run
from stepframe_train.sd.stack import FuserShape

REFERENCE = Path(__file__).parent / "fixtures" / "sd_reference"
WORLD = Path(__file__).resolve().parents[1] / "world_test"


@pytest.fixture(scope="module")
def split(tmp_path_factory):
    out = tmp_path_factory.mktemp("split")
    recipes = json.loads((WORLD / "recipes.json").read_text())["recipes"][:2]
    (out / "recipes.json").write_text(json.dumps({"recipes": recipes}))
    for step in (s for r in recipes for s in r["steps"]):
        shutil.copy(WORLD / step["image"], out / step["image"])
    return out


def _train(split, out, kind="concatenation", steps=2, **changes):
    settings = FinetuneSettings(fuser=kind, steps=steps, batch=2, save_every=2, log_every=1, **changes)
    lines = []
    finetune(REFERENCE / "sd", REFERENCE / "clip-vision", split, out, settings, log=lines.append)
    return lines


@pytest.mark.parametrize("kind", FUSER_KINDS)
def test_every_fuser_kind_fine_tunes_with_the_unet_and_the_loss_shows(split, tmp_path, kind):
    lines = _train(split, tmp_path / kind, kind=kind)
    assert any(line.startswith("step 2/2 loss ") for line in lines), lines
    run = load_run(tmp_path / kind)
    assert run["fuser_shape"]["kind"] == kind and run["step"] == 2
    assert run["unet"], "the UNet's parameters trained (--train-unet all)"


def test_the_encoders_and_vae_stay_frozen_and_attention_only_trains_the_transformer_blocks(split, tmp_path):
    _train(split, tmp_path / "attention", train_unet="attention")
    run = load_run(tmp_path / "attention")
    assert run["unet"] and all(".attentions." in key for key in run["unet"])
    base = load_stable_diffusion(REFERENCE / "sd")
    changed = [k for k, v in run["unet"].items() if not torch.equal(v, base.unet.state_dict()[k])]
    assert changed, "the attention parameters moved"


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(split, tmp_path):
    _train(split, tmp_path / "straight", steps=4)
    _train(split, tmp_path / "resumed", steps=2)
    lines = _train(split, tmp_path / "resumed", steps=4)
    assert any("resumed" in line and "step 2/4" in line for line in lines), lines
    a, b = load_run(tmp_path / "straight"), load_run(tmp_path / "resumed")
    for key in a["unet"]:
        assert torch.equal(a["unet"][key], b["unet"][key]), key
    for key in a["fuser"]:
        assert torch.equal(a["fuser"][key], b["fuser"][key]), key


def test_resuming_with_another_fuser_is_refused(split, tmp_path):
    _train(split, tmp_path / "run")
    with pytest.raises(ValueError, match="was started with --fuser concatenation, not image_pooling"):
        _train(split, tmp_path / "run", kind="image_pooling", steps=4)


def test_fp16_on_cpu_is_refused_naming_the_option(split, tmp_path):
    with pytest.raises(ValueError, match="--precision fp16 needs --device cuda"):
        _train(split, tmp_path / "run", precision="fp16")


@pytest.mark.parametrize("kind", FUSER_KINDS)
def test_fusers_are_sized_from_the_real_encoders_widths(kind):
    # SD 1.x's text encoder (77 x 768) and CLIP ViT-L/14 with projection (257 x 1024, pooled 768).
    shape = FuserShape(kind, 768, 77, 1024, 257, 768, 768, 4 * (1024 if kind in ("text_pooling", "attend_to_text") else 768))
    fuser = shape.build().eval()
    with torch.no_grad():
        out = fuser(torch.zeros(1, 77, 768), torch.zeros(1, 768), torch.zeros(1, 257, 1024), torch.zeros(1, 768))
    assert out.shape == (1, 77, 768)


def test_the_fuser_shape_comes_from_the_checkpoints():
    from stepframe_train.sd.stack import fuser_shape

    shape = fuser_shape("concatenation", load_stable_diffusion(REFERENCE / "sd"), load_clip_vision(REFERENCE / "clip-vision"))
    assert (shape.text_dim, shape.text_tokens, shape.image_dim, shape.image_tokens, shape.image_pooled_dim, shape.out_dim) == (32, 77, 48, 17, 32, 32)
