"""Builds tiny bundles in the exact tensor contract and folder layout of each real SD export variant.

The weights are the random-weight test fixtures (test/fixtures/bundles); only the interface and
the layout change, following what Optimum's exporter, diffusers' ONNX conversion script and the
Hub's `onnx` revisions write. The server's compatibility test starts a real server on each one.

    /usr/bin/python3 -m stepframe_train.onnx_tools.export_variants --fixtures ../test/fixtures/bundles --out /tmp/variants
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

import onnx
from onnx import TensorProto, helper

from .graph_edit import float16_interface, float16_weights, graph_input, graph_output, rename_uses, retype_input

REPO = Path(__file__).resolve().parents[3]
DEFAULT_TOKENIZER = REPO / "models" / "shared" / "tokenizer"

SD_SCHEDULER = {
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "set_alpha_to_one": False,
    "steps_offset": 1,
    "trained_betas": None,
    "_diffusers_version": "0.30.0",
}


def scalar_timestep(model: onnx.ModelProto, elem_type: int = TensorProto.FLOAT) -> onnx.ModelProto:
    """What diffusers' forward exports for a 0-d timestep: timestep[None].expand(sample.shape[0])."""
    graph = model.graph
    value = graph_input(graph, "timestep")
    body_type = value.type.tensor_type.elem_type
    value.type.tensor_type.elem_type = elem_type
    del value.type.tensor_type.shape.dim[:]
    rename_uses(graph, "timestep", "timestep__per_row")
    const = lambda name, values: helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(values)], values))
    nodes = [
        const("timestep__axes", [0]),
        helper.make_node("Unsqueeze", ["timestep", "timestep__axes"], ["timestep__one"], name="timestep_unsqueeze"),
        helper.make_node("Shape", ["sample"], ["timestep__sample_shape"]),
        const("timestep__start", [0]),
        const("timestep__end", [1]),
        helper.make_node("Slice", ["timestep__sample_shape", "timestep__start", "timestep__end"], ["timestep__batch"]),
        helper.make_node("Expand", ["timestep__one", "timestep__batch"], ["timestep__expanded"], name="timestep_expand"),
        helper.make_node("Cast", ["timestep__expanded"], ["timestep__per_row"], to=body_type),
    ]
    for node in reversed(nodes):
        graph.node.insert(0, node)
    del graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def rename_output(model: onnx.ModelProto, old: str, new: str) -> onnx.ModelProto:
    graph = model.graph
    graph_output(graph, old).name = new
    for node in graph.node:
        for i, out in enumerate(node.output):
            if out == old:
                node.output[i] = new
        for i, inp in enumerate(node.input):
            if inp == old:
                node.input[i] = new
    return model


def extra_input(model: onnx.ModelProto, name: str, dims: list) -> onnx.ModelProto:
    """An input the graph declares (LCM's guidance embedding); the tiny body does not read it."""
    model.graph.input.append(helper.make_tensor_value_info(name, TensorProto.FLOAT, dims))
    return model


def inpainting_channels(model: onnx.ModelProto, channels: int = 9) -> onnx.ModelProto:
    """SD inpainting's UNet: latents, mask and masked-image latents stacked on the channel axis."""
    graph = model.graph
    sample = graph_input(graph, "sample")
    sample.type.tensor_type.shape.dim[1].dim_value = channels
    rename_uses(graph, "sample", "sample__latents")
    const = lambda name, values: helper.make_node("Constant", [], [name], value=helper.make_tensor(name, TensorProto.INT64, [len(values)], values))
    nodes = [const("sample__start", [0]), const("sample__end", [4]), const("sample__axis", [1]),
             helper.make_node("Slice", ["sample", "sample__start", "sample__end", "sample__axis"], ["sample__latents"])]
    for node in reversed(nodes):
        graph.node.insert(0, node)
    del graph.value_info[:]
    return model


class Fixtures:
    def __init__(self, root: Path, tokenizer: Path):
        self.root = root
        self.tokenizer = tokenizer

    def load(self, relative: str) -> onnx.ModelProto:
        return onnx.load(str(self.root / relative))


def save(model: onnx.ModelProto, path: Path, external: bool = False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if external:
        onnx.save_model(model, str(path), save_as_external_data=True, all_tensors_to_one_file=True, location="model.onnx_data", size_threshold=0)
    else:
        onnx.save_model(model, str(path))


def write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2) + "\n")


def optimum_folder(
    out: Path,
    fx: Fixtures,
    *,
    text_encoder: onnx.ModelProto | None = None,
    unet: onnx.ModelProto | None = None,
    vae_decoder: onnx.ModelProto | None = None,
    scheduler: dict | None = None,
    special_tokens: dict | None = None,
    external_unet: bool = False,
) -> None:
    """Optimum's layout: model_index.json, one folder per component with its config, tokenizer/ and scheduler/."""
    save(text_encoder or fx.load("shared/text_encoder/model.onnx"), out / "text_encoder" / "model.onnx")
    save(unet or fx.load("baseline/unet/model.onnx"), out / "unet" / "model.onnx", external=external_unet)
    save(vae_decoder or fx.load("shared/vae_decoder/model.onnx"), out / "vae_decoder" / "model.onnx")
    write_json(out / "unet" / "config.json", {"_class_name": "UNet2DConditionModel", "sample_size": 16, "in_channels": 4, "cross_attention_dim": 32})
    # Three blocks: the VAE downsamples 2^(3-1) = 4x, as the fixture's autoencoder does.
    write_json(out / "vae_decoder" / "config.json", {"_class_name": "AutoencoderKL", "latent_channels": 4, "scaling_factor": 0.18215, "block_out_channels": [16, 16, 16]})
    write_json(out / "scheduler" / "scheduler_config.json", scheduler or {"_class_name": "PNDMScheduler", "skip_prk_steps": True, **SD_SCHEDULER})
    tokenizer = out / "tokenizer"
    tokenizer.mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(fx.tokenizer / name, tokenizer / name)
    tokens = special_tokens or {"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "<|endoftext|>", "unk_token": "<|endoftext|>"}
    write_json(tokenizer / "special_tokens_map.json", tokens)
    write_json(tokenizer / "tokenizer_config.json", {"model_max_length": 77, "tokenizer_class": "CLIPTokenizer", **{k: v for k, v in tokens.items()}})
    write_json(out / "model_index.json", {"_class_name": "ORTStableDiffusionPipeline", "_diffusers_version": "0.30.0"})


def stepframe_bundle(out: Path, fx: Fixtures, kind: str, image_encoder: onnx.ModelProto | None = None, defaults: dict | None = None, scheduler: dict | None = None) -> None:
    """A bundle with its shared components copied in and no hashes, as a hand-made bundle has."""
    manifest = json.loads((fx.root / kind / "stepframe.json").read_text())
    for component in ("text_encoder", "vae_decoder", "vae_encoder"):
        save(fx.load(f"shared/{component}/model.onnx"), out / component / "model.onnx")
    if kind != "baseline":
        save(image_encoder or fx.load("shared/image_encoder/model.onnx"), out / "image_encoder" / "model.onnx")
        save(fx.load(f"{kind}/fuser/model.onnx"), out / "fuser" / "model.onnx")
        shutil.copytree(fx.root / "shared" / "feature_extractor", out / "feature_extractor", dirs_exist_ok=True)
        manifest["feature_extractor"] = {"path": "feature_extractor"}
    save(fx.load(f"{kind}/unet/model.onnx"), out / "unet" / "model.onnx")
    shutil.copytree(fx.root / kind / "scheduler", out / "scheduler", dirs_exist_ok=True)
    if scheduler:
        config = json.loads((out / "scheduler" / "scheduler_config.json").read_text())
        write_json(out / "scheduler" / "scheduler_config.json", {**config, **scheduler})
    if defaults:
        manifest["defaults"].update(defaults)
    (out / "tokenizer").mkdir(parents=True, exist_ok=True)
    for name in ("vocab.json", "merges.txt"):
        shutil.copy(fx.tokenizer / name, out / "tokenizer" / name)
    for name, spec in manifest["components"].items():
        spec["path"] = f"{name}/model.onnx"
        spec.pop("sha256", None)
        spec.pop("weights_sha256", None)
    if image_encoder is not None:
        for output in manifest["components"]["image_encoder"].get("outputs", []):
            if output["name"] == "pooler_output" and output["name"] not in [o.name for o in image_encoder.graph.output]:
                output["name"] = "image_embeds"
    manifest["tokenizer"]["path"] = "tokenizer"
    manifest["name"] = out.name
    write_json(out / "stepframe.json", manifest)


def build_all(fx: Fixtures, out: Path) -> list[str]:
    text = lambda: fx.load("shared/text_encoder/model.onnx")
    unet = lambda: fx.load("baseline/unet/model.onnx")
    vae = lambda: fx.load("shared/vae_decoder/model.onnx")

    def fp16(model: onnx.ModelProto, interface: bool) -> onnx.ModelProto:
        float16_weights(model.graph)
        if interface:
            float16_interface(model)
        onnx.checker.check_model(model)
        return model

    builders = {
        # Optimum >= 1.24, fp32: the UNet's timestep is a 0-d float.
        "optimum_scalar_timestep": lambda d: optimum_folder(d, fx, unet=scalar_timestep(unet())),
        # Optimum before 1.24: timestep int64 [steps].
        "optimum_int64_timestep": lambda d: optimum_folder(d, fx),
        # Optimum --dtype fp16: every float input and output (the timestep too) is float16.
        "optimum_fp16": lambda d: optimum_folder(d, fx, text_encoder=fp16(text(), True), unet=fp16(scalar_timestep(unet()), True), vae_decoder=fp16(vae(), True)),
        # float32 inputs and outputs around float16 weights (mixed-precision exports).
        "fp16_body_fp32_io": lambda d: optimum_folder(d, fx, text_encoder=fp16(text(), False), unet=fp16(unet(), False), vae_decoder=fp16(vae(), False)),
        # diffusers' conversion script, as the Hub's `onnx` revisions ship: int32 ids, float [batch] timestep.
        "hub_int32_input_ids": lambda d: optimum_folder(
            d, fx, text_encoder=_retyped(text(), "input_ids", TensorProto.INT32, TensorProto.INT64),
            unet=_retyped(unet(), "timestep", TensorProto.FLOAT, TensorProto.INT64)),
        # Weights in model.onnx_data beside model.onnx (every real SD UNet: protobuf stops at 2 GB).
        "external_data": lambda d: optimum_folder(d, fx, external_unet=True),
        # SD 2.x: v-prediction, and a tokenizer that pads with "!" (id 0).
        "sd2_v_prediction": lambda d: optimum_folder(
            d, fx, scheduler={"_class_name": "DDIMScheduler", **SD_SCHEDULER, "prediction_type": "v_prediction"},
            special_tokens={"bos_token": "<|startoftext|>", "eos_token": "<|endoftext|>", "pad_token": "!", "unk_token": "<|endoftext|>"}),
        # SD 1.x's own scheduler config: PNDM with skip_prk_steps.
        "pndm_scheduler": lambda d: optimum_folder(d, fx),
        # An LCM UNet: the guidance embedding arrives as timestep_cond [batch, 256].
        "lcm_unet": lambda d: optimum_folder(
            d, fx, unet=extra_input(unet(), "timestep_cond", ["batch", 256]),
            scheduler={"_class_name": "LCMScheduler", **SD_SCHEDULER, "original_inference_steps": 50}),
        # SD inpainting: a 9-channel UNet.
        "inpainting_unet": lambda d: optimum_folder(d, fx, unet=inpainting_channels(unet())),
        # A distilled one-step model (SD-Turbo style): its stepframe.json says 1 step, no guidance, ancestral Euler, trailing spacing.
        "distilled_one_step": lambda d: stepframe_bundle(
            d, fx, "baseline", defaults={"scheduler": "euler_ancestral", "num_inference_steps": 1, "guidance_scale": 0.0},
            scheduler={"_class_name": "EulerAncestralDiscreteScheduler", "timestep_spacing": "trailing"}),
        # CLIPVisionModelWithProjection as the image encoder: image_embeds and last_hidden_state.
        "clip_vision_projection": lambda d: stepframe_bundle(d, fx, "image_pooling", rename_output(fx.load("shared/image_encoder/model.onnx"), "pooler_output", "image_embeds")),
    }
    for name, build in builders.items():
        folder = out / name
        if folder.exists():
            shutil.rmtree(folder)
        build(folder)
    return list(builders)


def _retyped(model: onnx.ModelProto, name: str, outer: int, inner: int) -> onnx.ModelProto:
    retype_input(model.graph, name, outer, inner)
    del model.graph.value_info[:]
    onnx.checker.check_model(model)
    return model


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fixtures", type=Path, default=REPO / "test" / "fixtures" / "bundles", help="the random-weight fixture bundles")
    parser.add_argument("--tokenizer", type=Path, default=DEFAULT_TOKENIZER, help="folder with CLIP's vocab.json and merges.txt")
    parser.add_argument("--out", type=Path, required=True, help="folder that receives one subfolder per variant")
    args = parser.parse_args(argv)
    names = build_all(Fixtures(args.fixtures, args.tokenizer), args.out)
    print(json.dumps({"out": str(args.out), "variants": names}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
