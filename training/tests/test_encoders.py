"""The encoder grid's other architectures: a bag-of-tokens text encoder and a convolutional image encoder."""
import json

import onnx
import pytest
import torch

from stepframe_train.bundle import BundleSpec, write_bundles
from stepframe_train.config import TEXT_MAX_LENGTH, ImageEncoderConfig, StackConfig, TextEncoderConfig, tiny_stack
from stepframe_train.export import DEFAULT_TOKENIZER
from stepframe_train.models.encoders import build_image_encoder, build_text_encoder
from stepframe_train.stack import build_stack


def _ids(*tokens: list[int]) -> torch.Tensor:
    ids = torch.full((len(tokens), TEXT_MAX_LENGTH), 49407)
    ids[:, 0] = 49406
    for row, t in enumerate(tokens):
        ids[row, 1 : 1 + len(t)] = torch.tensor(t)
    return ids


def test_bag_encoder_pools_the_real_tokens_without_order():
    torch.manual_seed(0)
    encoder = build_text_encoder(TextEncoderConfig(kind="bag", width=16, layers=1))
    hidden, pooled = encoder(_ids([5, 9, 13], [13, 5, 9], [5, 9, 14]))
    assert hidden.shape == (3, TEXT_MAX_LENGTH, 16) and pooled.shape == (3, 16)
    assert torch.allclose(pooled[0], pooled[1], atol=1e-6), "the same tokens in another order pool alike"
    assert not torch.allclose(pooled[0], pooled[2], atol=1e-3), "another token changes the pooled output"
    # No context: a token's hidden state does not depend on its neighbours or its position.
    assert torch.allclose(hidden[0, 1], hidden[1, 2], atol=1e-6)


def test_bag_encoder_ignores_the_padding_after_the_first_eos():
    torch.manual_seed(0)
    encoder = build_text_encoder(TextEncoderConfig(kind="bag", width=16, layers=1))
    padded = _ids([5, 9])
    different_tail = padded.clone()
    different_tail[0, 10:] = 7  # after the first EOS: never a real token
    assert torch.allclose(encoder(padded)[1], encoder(different_tail)[1], atol=1e-6)


def test_conv_encoder_gives_one_token_per_patch_and_no_cls():
    cfg = ImageEncoderConfig(kind="conv", width=16, layers=1, patch_size=8)
    hidden, pooled = build_image_encoder(cfg)(torch.randn(2, 3, 64, 64))
    assert cfg.tokens == 64 and ImageEncoderConfig().tokens == 65
    assert hidden.shape == (2, cfg.tokens, 16) and pooled.shape == (2, 16)


def test_conv_encoder_refuses_a_patch_it_cannot_tile():
    with pytest.raises(ValueError, match="even patch size"):
        build_image_encoder(ImageEncoderConfig(kind="conv", patch_size=5))


@pytest.mark.parametrize("build,cfg,kinds", [(build_text_encoder, TextEncoderConfig(kind="rnn"), "transformer, bag"),
                                              (build_image_encoder, ImageEncoderConfig(kind="resnet"), "vit, conv")])
def test_unknown_encoder_kind_names_the_known_ones(build, cfg, kinds):
    with pytest.raises(ValueError, match=kinds):
        build(cfg)


def test_configs_written_before_kinds_existed_read_as_the_bundles_encoders():
    raw = tiny_stack("concatenation").to_dict()
    for side in ("text", "image"):
        raw[side].pop("kind")
    cfg = StackConfig.from_dict(raw)
    assert (cfg.text.kind, cfg.image.kind) == ("transformer", "vit")


def test_bundles_on_other_encoders_share_one_models_folder(tmp_path):
    """experiments.encoder_grid writes each pair's encoders to their own shared folder next to the others."""
    torch.manual_seed(0)
    base = tiny_stack("concatenation")
    other = StackConfig.from_dict({**base.to_dict(), "text": {**base.to_dict()["text"], "kind": "bag"},
                                   "image": {**base.to_dict()["image"], "kind": "conv", "patch_size": 8}})
    for name, cfg in (("on_clip", base), ("on_bag_conv", other)):
        stack = build_stack(cfg)
        spec = BundleSpec(name=name, fuser_kind="concatenation", unet=stack.unet, fuser=stack.fuser, image_guidance=True)
        write_bundles(tmp_path, stack, [spec], DEFAULT_TOKENIZER, {}, shared_name=f"shared_{name}")
    for name in ("on_clip", "on_bag_conv"):
        manifest = json.loads((tmp_path / name / "stepframe.json").read_text())
        for component in ("text_encoder", "image_encoder"):
            path = (tmp_path / name / manifest["components"][component]["path"]).resolve()
            assert path.parent.parent == tmp_path / f"shared_{name}"
            onnx.checker.check_model(str(path))
    conv = onnx.load(str(tmp_path / "shared_on_bag_conv" / "image_encoder" / "model.onnx"))
    hidden = conv.graph.output[0].type.tensor_type.shape.dim
    assert hidden[1].dim_value == other.image.tokens
