"""The fusers beyond the paper (models/sequence_fusers.py): shapes, what they start from, the first frame, export."""
import json
from pathlib import Path

import onnx
import pytest
import torch

from stepframe_train.config import TEXT_MAX_LENGTH, default_stack, tiny_stack
from stepframe_train.export import main as export_main
from stepframe_train.models.fuser_registry import SEQUENCE_FUSER_KINDS, build_fuser
from stepframe_train.models.sequence_fusers import AnchorDecoupledFuser
from stepframe_train.models.unet import UNet
from stepframe_train.pipeline.data import load_split
from stepframe_train.pipeline.finetune import finetune_from_text
from stepframe_train.pipeline.log import quiet
from stepframe_train.pipeline.settings import FinetuneStage
from stepframe_train.stack import build_stack, config_for_fuser

FIRST_FRAME_KINDS = ("anchor_concatenation", "anchor_decoupled")
DECOUPLED_KINDS = ("decoupled", "anchor_decoupled")


def _inputs(cfg, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    text = torch.randn(batch, TEXT_MAX_LENGTH, cfg.text.width, generator=g), torch.randn(batch, cfg.text.width, generator=g)
    image = torch.randn(batch, cfg.image.tokens, cfg.image.width, generator=g), torch.randn(batch, cfg.image.width, generator=g)
    return text, image


@pytest.mark.parametrize("preset", [tiny_stack, default_stack])
@pytest.mark.parametrize("kind", SEQUENCE_FUSER_KINDS)
def test_each_sequence_fuser_feeds_the_unet_its_config_builds(preset, kind):
    cfg = config_for_fuser(preset(kind), kind)
    stack = build_stack(cfg)
    (th, tp), (ih, ip) = _inputs(cfg)
    fused = stack.fuser(th, tp, ih, ip, ih, ip) if stack.fuser.uses_first_frame else stack.fuser(th, tp, ih, ip)
    assert fused.shape == (2, stack.fuser.context_tokens, cfg.unet.cross_attention_dim)
    expected_image_tokens = fused.shape[1] - TEXT_MAX_LENGTH if kind in DECOUPLED_KINDS else 0
    assert cfg.unet.image_context_tokens == stack.fuser.image_context_tokens == expected_image_tokens
    latent = cfg.image.image_size // cfg.vae.downscale
    assert stack.unet(torch.zeros(2, cfg.unet.latent_channels, latent, latent), torch.tensor([1, 999]), fused).shape[1] == cfg.unet.latent_channels


@pytest.mark.parametrize("kind", DECOUPLED_KINDS)
def test_decoupled_fusers_pass_the_77_text_tokens_through_untouched(kind):
    cfg = config_for_fuser(tiny_stack(kind), kind)
    fuser = build_stack(cfg).fuser
    (th, tp), (ih, ip) = _inputs(cfg)
    assert torch.equal(fuser(th, tp, ih, ip)[:, :TEXT_MAX_LENGTH], th)


@pytest.mark.parametrize("kind", DECOUPLED_KINDS)
def test_a_decoupled_unet_loaded_from_the_text_only_one_starts_as_exactly_that_model(kind):
    """Fine-tuning starts from the text-only UNet's behaviour whatever the image: its image attention outputs zero."""
    base_cfg = tiny_stack("baseline")
    torch.manual_seed(3)
    text_only = UNet(base_cfg.unet).eval()
    cfg = config_for_fuser(tiny_stack(kind), kind)
    unet = UNet(cfg.unet).eval()
    unet.load_text_only(text_only.state_dict())
    stack = build_stack(cfg)
    (th, tp), (ih, ip) = _inputs(cfg)
    fused = stack.fuser(th, tp, ih, ip)
    x, t = torch.randn(2, cfg.unet.latent_channels, 8, 8), torch.tensor([10, 700])
    with torch.no_grad():
        assert torch.equal(unet(x, t, fused), text_only(x, t, th))
    # ... and the image path is live: once it has weights, the image changes the prediction.
    with torch.no_grad():
        for name, p in unet.named_parameters():
            if ".attn2_image.to_out." in name:
                p.normal_(0, 0.5)
        assert not torch.allclose(unet(x, t, fused), text_only(x, t, th))


def test_load_text_only_refuses_weights_of_another_shape():
    cfg = config_for_fuser(tiny_stack("decoupled"), "decoupled")
    other = UNet(tiny_stack("baseline").unet).state_dict()
    del other["conv_in.weight"]
    with pytest.raises(ValueError, match="conv_in.weight"):
        UNet(cfg.unet).load_text_only(other)


@pytest.mark.parametrize("kind", FIRST_FRAME_KINDS)
def test_first_frame_fusers_depend_on_the_first_frame_and_default_it_to_the_previous(kind):
    cfg = config_for_fuser(tiny_stack(kind), kind)
    fuser = build_stack(cfg).fuser  # random weights: every path is live
    (th, tp), (ih, ip) = _inputs(cfg)
    (_, _), (fh, fp) = _inputs(cfg, seed=1)
    with torch.no_grad():
        assert not torch.allclose(fuser(th, tp, ih, ip, fh, fp), fuser(th, tp, ih, ip, ih, ip))
        assert torch.equal(fuser(th, tp, ih, ip), fuser(th, tp, ih, ip, ih, ip))


def test_anchor_concatenation_starts_by_passing_the_text_through():
    cfg = tiny_stack("anchor_concatenation")
    fuser = build_stack(cfg).fuser
    fuser.start_from_text()
    (th, tp), (ih, ip) = _inputs(cfg)
    assert torch.allclose(fuser(th, tp, ih, ip, ih * 2, ip), th, atol=1e-5)


def test_the_decoupled_fuser_names_a_width_mismatch():
    with pytest.raises(ValueError, match="text width 32 must equal the UNet's 64"):
        build_fuser("decoupled", text_dim=32, text_tokens=77, image_dim=32, image_tokens=5, out_dim=64, hidden=16)


def test_every_frame_knows_its_recipes_first_frame():
    world = load_split("train", limit=4)
    start = 0
    for recipe in world.recipes:
        n = len(recipe.steps)
        assert world.first[start:start + n].tolist() == [start] * n
        start += n
    assert start == len(world.first)


def test_finetuning_a_first_frame_fuser_feeds_it_the_recipes_first_frame(monkeypatch):
    """Rows given their previous frame get their recipe's first frame too; rows without get zeros for both."""
    world = load_split("train", limit=3)
    cfg = tiny_stack("anchor_decoupled")
    n = len(world.frames)
    g = torch.Generator().manual_seed(0)
    # Each frame's image encoding is its own index, so what the fuser is given says which frame it was.
    hidden = torch.arange(n, dtype=torch.float32).view(n, 1, 1).expand(n, cfg.image.tokens, cfg.image.width) + 1
    encoded = {"latents": torch.randn(n, cfg.vae.latent_channels, 8, 8, generator=g),
               "text_hidden": torch.randn(len(world.texts), TEXT_MAX_LENGTH, cfg.text.width, generator=g),
               "text_pooled": torch.randn(len(world.texts), cfg.text.width, generator=g),
               "empty_hidden": torch.zeros(1, TEXT_MAX_LENGTH, cfg.text.width), "empty_pooled": torch.zeros(1, cfg.text.width),
               "image_hidden": hidden.contiguous(), "image_pooled": hidden[:, 0].contiguous()}
    seen = []
    original = AnchorDecoupledFuser.forward

    def spy(self, th, tp, ih, ip, fh=None, fp=None):
        seen.append((ih[:, 0, 0].detach().clone(), fh[:, 0, 0].detach().clone()))
        return original(self, th, tp, ih, ip, fh, fp)

    monkeypatch.setattr(AnchorDecoupledFuser, "forward", spy)
    text_unet = UNet(tiny_stack("baseline").unet).state_dict()
    finetune_from_text(cfg, world, encoded, text_unet, "anchor_decoupled", FinetuneStage(steps=4, batch=8, seed=0), quiet)
    first = world.first.tolist()
    pairs = [(int(p), int(f)) for ih, fh in seen for p, f in zip(ih.tolist(), fh.tolist())]
    assert any(p != 0 for p, _ in pairs), "some rows were given a previous frame"
    for p, f in pairs:
        if p == 0:
            assert f == 0, "a row without its previous frame has no first frame either"
        else:
            assert f - 1 == first[p - 1], f"previous frame {p - 1}: first should be {first[p - 1]}, got {f - 1}"


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    out = tmp_path_factory.mktemp("sequence-bundles")
    assert export_main(["--random", "--seed", "7", "--preset", "tiny", "--fusers", ",".join(SEQUENCE_FUSER_KINDS), "--out", str(out)]) == 0
    return out


@pytest.mark.parametrize("kind", SEQUENCE_FUSER_KINDS)
def test_exported_sequence_bundles_declare_the_first_frame_inputs_and_the_longer_context(kind, exported):
    manifest = json.loads((exported / kind / "stepframe.json").read_text())
    fuser_inputs = [i["name"] for i in manifest["components"]["fuser"]["inputs"]]
    assert ("first_image_hidden_states" in fuser_inputs) == (kind in FIRST_FRAME_KINDS)
    tokens = tiny_stack(kind).image.tokens
    context = 77 + {"anchor_concatenation": 0, "decoupled": tokens, "anchor_decoupled": 2 * tokens}[kind]
    unet_context = next(i for i in manifest["components"]["unet"]["inputs"] if i["name"] == "encoder_hidden_states")["shape"]
    fuser_output = manifest["components"]["fuser"]["outputs"][0]["shape"]
    assert unet_context == fuser_output == ["batch", context, tiny_stack(kind).unet.cross_attention_dim]
    onnx.checker.check_model(str(exported / kind / "unet" / "model.onnx"))


def test_committed_sequence_fixture_bundles_are_what_the_exporter_makes(exported):
    """The TypeScript suite tests against test/fixtures/sequence-bundles; regenerate them with `npm run fixtures` if this fails."""
    committed_dir = Path(__file__).resolve().parents[2] / "test" / "fixtures" / "sequence-bundles"
    for kind in SEQUENCE_FUSER_KINDS:
        fresh = json.loads((exported / kind / "stepframe.json").read_text())
        committed = json.loads((committed_dir / kind / "stepframe.json").read_text())
        for name, entry in fresh["components"].items():
            assert committed["components"][name]["weights_sha256"] == entry["weights_sha256"], f"{kind}/{name}"
