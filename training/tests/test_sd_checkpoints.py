"""Checkpoint folders as the libraries write them, and the refusals that keep a wrong load from passing quietly."""
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from stepframe_train.sd.attention import Attention, Transformer2DModel
from stepframe_train.sd.clip import ClipConfig, ClipTextModel
from stepframe_train.sd.errors import CheckpointError
from stepframe_train.sd.folders import load_clip_vision, load_stable_diffusion, load_unet, load_vae
from stepframe_train.sd.unet import UNet2DConditionModel, UNetConfig
from stepframe_train.sd.weights import read_safetensors, read_weights, write_safetensors

REFERENCE = Path(__file__).parent / "fixtures" / "sd_reference"


@pytest.fixture
def sd_copy(tmp_path):
    target = tmp_path / "sd"
    shutil.copytree(REFERENCE / "sd", target)
    for path in target.rglob("*"):
        path.chmod(0o644 if path.is_file() else 0o755)
    return target


def _edit_config(folder: Path, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def _edit_weights(folder: Path, edit):
    path = folder / "diffusion_pytorch_model.safetensors"
    tensors = read_safetensors(path)
    edit(tensors)
    write_safetensors(path, tensors)


def test_a_missing_key_is_refused_by_name(sd_copy):
    _edit_weights(sd_copy / "unet", lambda t: t.pop("mid_block.attentions.0.proj_out.weight"))
    with pytest.raises(CheckpointError, match=r"missing key 'mid_block\.attentions\.0\.proj_out\.weight'"):
        load_unet(sd_copy / "unet")


def test_an_unexpected_key_is_refused_by_name(sd_copy):
    _edit_weights(sd_copy / "unet", lambda t: t.update({"add_embedding.linear_1.weight": torch.zeros(2, 2)}))
    with pytest.raises(CheckpointError, match=r"unexpected key 'add_embedding\.linear_1\.weight'"):
        load_unet(sd_copy / "unet")


def test_a_shape_mismatch_is_refused_naming_the_key_and_both_shapes(sd_copy):
    _edit_weights(sd_copy / "unet", lambda t: t.update({"conv_in.weight": torch.zeros(32, 4, 1, 1)}))
    with pytest.raises(CheckpointError, match=r"'conv_in\.weight' has shape \[32, 4, 1, 1\], the config gives \[32, 4, 3, 3\]"):
        load_unet(sd_copy / "unet")


def test_an_unsupported_block_type_is_refused_by_name(sd_copy):
    _edit_config(sd_copy / "unet", down_block_types=["CrossAttnDownBlock2D", "SimpleCrossAttnDownBlock2D", "DownBlock2D"])
    with pytest.raises(CheckpointError, match=r"option down_block_types=.*SimpleCrossAttnDownBlock2D.* is not supported"):
        load_unet(sd_copy / "unet")


@pytest.mark.parametrize("option, value", [("class_embed_type", "timestep"), ("time_cond_proj_dim", 256), ("addition_embed_type", "text_time"),
                                           ("resnet_time_scale_shift", "scale_shift")])
def test_an_unimplemented_unet_option_is_refused_by_name(sd_copy, option, value):
    _edit_config(sd_copy / "unet", **{option: value})
    with pytest.raises(CheckpointError, match=rf"option {option}="):
        load_unet(sd_copy / "unet")


def test_an_option_stepframe_does_not_know_is_refused(sd_copy):
    _edit_config(sd_copy / "unet", brand_new_option=True)
    with pytest.raises(CheckpointError, match=r"option 'brand_new_option' is not implemented"):
        load_unet(sd_copy / "unet")


def test_a_vae_with_sd3_latent_shift_is_refused(sd_copy):
    _edit_config(sd_copy / "vae", shift_factor=0.0609)
    with pytest.raises(CheckpointError, match=r"shift_factor"):
        load_vae(sd_copy / "vae")


def test_an_unknown_clip_activation_is_refused(sd_copy):
    _edit_config(sd_copy / "text_encoder", hidden_act="relu")
    with pytest.raises(CheckpointError, match=r"hidden_act='relu' is not supported"):
        load_stable_diffusion(sd_copy)


@torch.no_grad()
def test_sharded_safetensors_load_the_same_weights(sd_copy):
    folder = sd_copy / "unet"
    tensors = read_safetensors(folder / "diffusion_pytorch_model.safetensors")
    names = sorted(tensors)
    shards = {"diffusion_pytorch_model-00001-of-00002.safetensors": names[: len(names) // 2],
              "diffusion_pytorch_model-00002-of-00002.safetensors": names[len(names) // 2:]}
    weight_map = {}
    for shard, keys in shards.items():
        write_safetensors(folder / shard, {k: tensors[k] for k in keys})
        weight_map.update({k: shard for k in keys})
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    loaded = load_unet(folder)
    for key, value in loaded.state_dict().items():
        assert torch.equal(value, tensors[key]), key


def test_a_shard_named_in_the_index_but_absent_is_refused(sd_copy):
    folder = sd_copy / "vae"
    (folder / "diffusion_pytorch_model.safetensors").unlink()
    (folder / "diffusion_pytorch_model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "part-2.safetensors"}}))
    with pytest.raises(CheckpointError, match=r"shard part-2\.safetensors is missing"):
        read_weights(folder, "diffusion_pytorch_model")


@torch.no_grad()
def test_torch_save_bin_weights_load(sd_copy):
    folder = sd_copy / "text_encoder"
    tensors = read_safetensors(folder / "model.safetensors")
    (folder / "model.safetensors").unlink()
    torch.save(tensors, folder / "pytorch_model.bin")
    (folder / "pytorch_model.bin").rename(folder / "model.bin")
    sd = load_stable_diffusion(sd_copy)
    assert torch.equal(sd.text_encoder.text_model.embeddings.token_embedding.weight, tensors["text_model.embeddings.token_embedding.weight"])


def test_the_text_encoders_legacy_position_ids_buffer_is_accepted():
    assert "text_model.embeddings.position_ids" in read_safetensors(REFERENCE / "sd" / "text_encoder" / "model.safetensors")
    load_stable_diffusion(REFERENCE / "sd")  # loads: the buffer is dropped, not refused


@torch.no_grad()
def test_a_vae_with_the_legacy_attention_names_loads_the_same(sd_copy):
    folder = sd_copy / "vae"
    before = load_vae(folder)

    def legacy(tensors):
        for key in list(tensors):
            for new, old in (("to_q", "query"), ("to_k", "key"), ("to_v", "value"), ("to_out.0", "proj_attn")):
                if f"attentions.0.{new}." in key:
                    tensors[key.replace(new, old)] = tensors.pop(key)[:, :, None, None] if key.endswith("weight") else tensors.pop(key)
    _edit_weights(folder, legacy)
    after = load_vae(folder)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    assert torch.equal(before.decode(latents), after.decode(latents))


@torch.no_grad()
def test_a_whole_clip_model_folder_gives_its_vision_tower(tmp_path):
    source = REFERENCE / "clip-vision"
    vision_config = json.loads((source / "config.json").read_text())
    projection_dim = vision_config.pop("projection_dim")
    for key in ("architectures", "torch_dtype", "transformers_version"):
        vision_config.pop(key)
    folder = tmp_path / "clip"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"architectures": ["CLIPModel"], "projection_dim": projection_dim,
                                                    "text_config": {"hidden_size": 32}, "vision_config": vision_config}))
    tensors = read_safetensors(source / "model.safetensors")
    tensors.update({"text_model.final_layer_norm.weight": torch.ones(32), "text_projection.weight": torch.zeros(32, 32), "logit_scale": torch.ones(())})
    write_safetensors(folder / "model.safetensors", tensors)
    shutil.copy(source / "preprocessor_config.json", folder)
    pixels = torch.from_numpy(np.load(REFERENCE / "reference" / "vision.pixel_values.npy"))
    whole = load_clip_vision(folder).model(pixels)
    tower = load_clip_vision(source).model(pixels)
    for a, b in zip(whole, tower):
        assert torch.equal(a, b)


# SD 2.x's options are not in the reference fixture; these check them against what diffusers' and
# transformers' sources say they compute.

def _sd2_unet_config(tmp_path: Path, **changes) -> UNetConfig:
    config = json.loads((REFERENCE / "sd" / "unet" / "config.json").read_text())
    config.update({"attention_head_dim": [2, 4, 4], "use_linear_projection": True, "upcast_attention": True, **changes})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return UNetConfig.read(path)


def test_sd2_per_level_heads_and_linear_projection_shape_the_keys_as_sd2_checkpoints(tmp_path):
    unet = UNet2DConditionModel(_sd2_unet_config(tmp_path))
    state = unet.state_dict()
    assert state["down_blocks.0.attentions.0.proj_in.weight"].shape == (32, 32)  # linear, not a 1x1 conv
    assert state["up_blocks.2.attentions.0.proj_out.weight"].shape == (32, 32)
    heads = {name: m.heads for name, m in unet.named_modules() if isinstance(m, Attention)}
    assert heads["down_blocks.0.attentions.0.transformer_blocks.0.attn1"] == 2
    assert heads["down_blocks.1.attentions.0.transformer_blocks.0.attn2"] == 4
    assert heads["mid_block.attentions.0.transformer_blocks.0.attn1"] == 4  # the last level's count
    assert heads["up_blocks.2.attentions.0.transformer_blocks.0.attn1"] == 2  # up levels reverse the list


@torch.no_grad()
def test_linear_projection_computes_what_the_1x1_conv_projection_computes():
    g = torch.Generator().manual_seed(0)
    conv = Transformer2DModel(2, 8, 16, 1, 12, 4, linear_projection=False, upcast=False)
    linear = Transformer2DModel(2, 8, 16, 1, 12, 4, linear_projection=True, upcast=False)
    for p in conv.parameters():
        p.copy_(torch.randn(p.shape, generator=g) * 0.2)
    linear.load_state_dict({k: v.flatten(1) if k.startswith(("proj_in.weight", "proj_out.weight")) else v for k, v in conv.state_dict().items()})
    x, context = torch.randn(2, 16, 4, 5, generator=g), torch.randn(2, 7, 12, generator=g)
    assert torch.allclose(conv(x, context), linear(x, context), atol=1e-5)


@torch.no_grad()
def test_upcast_attention_runs_the_softmax_in_float32():
    g = torch.Generator().manual_seed(0)
    plain, upcast = Attention(16, 2, 8), Attention(16, 2, 8, upcast=True)
    upcast.load_state_dict(plain.state_dict())
    x = torch.randn(1, 6, 16, generator=g) * 30
    assert torch.allclose(plain(x), upcast(x), atol=1e-5)  # the same in fp32
    assert upcast.to(torch.bfloat16)(x.bfloat16()).dtype == torch.bfloat16


def _text_config(tmp_path: Path, **changes) -> ClipConfig:
    config = json.loads((REFERENCE / "sd" / "text_encoder" / "config.json").read_text())
    config.update(changes)
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    return ClipConfig.read(path, "text")


@torch.no_grad()
def test_sd2_text_encoder_pools_at_the_first_eos_token_and_uses_exact_gelu(tmp_path):
    legacy = ClipTextModel(_text_config(tmp_path))
    sd2 = ClipTextModel(_text_config(tmp_path, hidden_act="gelu", eos_token_id=49407))
    sd2.load_state_dict(legacy.state_dict())
    ids = torch.tensor([[49406, 320, 1125, 49407, 0, 0] + [0] * 71])  # SD 2.x pads with "!" (id 0) after EOS
    hidden, pooled, _ = sd2(ids)
    assert torch.equal(pooled, hidden[:, 3])
    assert not torch.allclose(hidden, legacy(ids)[0])  # gelu, not quick_gelu
    custom = ClipTextModel(_text_config(tmp_path, eos_token_id=320))  # the token itself, not the highest id
    hidden, pooled, _ = custom(ids)
    assert torch.equal(pooled, hidden[:, 1])
