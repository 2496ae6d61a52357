"""The training stages on a handful of recipes: they run, and their bookkeeping is right."""
import multiprocessing as mp
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from stepframe_train.config import tiny_stack
from stepframe_train.models.unet import UNet
from stepframe_train.export import DEFAULT_TOKENIZER, world_token_map
from dataclasses import replace

import numpy as np

from stepframe_train.pipeline import checkpoints, data_parallel
from stepframe_train.pipeline.autoencoder import detail_weights, held_out_psnr, refine_decoder, train_vae
from stepframe_train.pipeline.contrastive import recipe_of_frame, train_clip
from stepframe_train.pipeline.data import load_split
from stepframe_train.pipeline.denoising import _masked_style_parts, change_weights, train_unet, unchanged_mask
from stepframe_train.pipeline.evaluate import autoencoder_roundtrip
from stepframe_train.pipeline.finetune import finetune_from_text
from stepframe_train.pipeline.log import quiet
from stepframe_train.pipeline.settings import (AutoencoderStage, ContrastiveStage, DecoderStage, DenoisingSettings, DenoisingStage, FinetuneStage,
                                               TrainingConfig, style_weights_from)
from stepframe_train.world.metrics import psnr

VAE = AutoencoderStage(steps=2, batch=4, seed=0)
DENOISING = DenoisingStage(steps=3, batch=4, seed=5, losses=DenoisingSettings(lr=5e-4, style_weight=0.1))


@pytest.fixture(scope="module")
def world():
    return load_split("train", limit=6)


def test_recipe_of_frame_follows_the_previous_links(world):
    recipe = recipe_of_frame(world.previous)
    lengths = [len(r.steps) for r in world.recipes]
    assert recipe.tolist() == [i for i, n in enumerate(lengths) for _ in range(n)]


def test_vae_stage_reports_the_held_out_psnr_a_user_would_measure(world):
    """val_psnr is the mean PSNR of the uint8 round trip of every val frame, as world.metrics scores a generated frame."""
    val = load_split("val", limit=2)
    vae, scaling, losses = train_vae(tiny_stack("baseline"), world, val, replace(VAE, steps=3), quiet)
    frames = val.frames.permute(0, 2, 3, 1).numpy()
    with torch.no_grad():
        expected = np.mean([psnr(out, ref) for out, ref in zip(autoencoder_roundtrip(vae, frames), frames)])
    assert losses["val_psnr"] == pytest.approx(expected, abs=0.01)
    # The scaling factor makes the latents' standard deviation 1, as SD's 0.18215 does for its own autoencoder.
    with torch.no_grad():
        means = vae.encode(world.frames.float() / 127.5 - 1)[0]
    assert float((means * scaling).std()) == pytest.approx(1.0, rel=0.02)


def test_decoder_refinement_leaves_the_encoder_and_so_the_latents_alone(world):
    val = load_split("val", limit=2)
    vae, _, _ = train_vae(tiny_stack("baseline"), world, val, VAE, quiet)
    encoder, decoder = ({k: v.clone() for k, v in m.state_dict().items()} for m in (vae.encoder, vae.decoder))
    vae, losses = refine_decoder(vae, world, val, DecoderStage(steps=3, batch=4, seed=0), quiet)
    assert all(torch.equal(v, vae.encoder.state_dict()[k]) for k, v in encoder.items())
    assert any(not torch.equal(v, vae.decoder.state_dict()[k]) for k, v in decoder.items())
    with torch.no_grad():
        assert losses["val_psnr"] == pytest.approx(held_out_psnr(vae, val), abs=1e-4)  # the refined decoder's, not the old one's


def test_first_stage_checkpoints_take_the_refined_decoder_only_from_its_own_autoencoder(world, tmp_path):
    vae, scaling, losses = train_vae(tiny_stack("baseline"), world, load_split("val", limit=2), VAE, quiet)
    torch.save({"vae": vae.state_dict(), "scaling": scaling, "losses": losses}, tmp_path / "vae.pt")
    torch.save({"text_encoder": {}}, tmp_path / "clip.pt")
    assert torch.equal(checkpoints.first_stage_checkpoints(tmp_path)[0]["vae"]["decoder.conv_out.bias"], vae.decoder.conv_out.bias)
    refined = {k: torch.full_like(v, 0.5) if v.is_floating_point() else v for k, v in vae.decoder.state_dict().items()}
    torch.save({"decoder": refined, "losses": {"val_psnr": 1.0}, "refined_from": losses}, tmp_path / "decoder.pt")
    vae_ckpt, _ = checkpoints.first_stage_checkpoints(tmp_path)
    assert torch.equal(vae_ckpt["vae"]["decoder.conv_out.bias"], refined["conv_out.bias"])
    assert torch.equal(vae_ckpt["vae"]["encoder.conv_out.bias"], vae.encoder.conv_out.bias) and vae_ckpt["decoder_losses"] == {"val_psnr": 1.0}
    torch.save({"decoder": refined, "losses": {}, "refined_from": {**losses, "recon": -1.0}}, tmp_path / "decoder.pt")
    with pytest.raises(ValueError, match="refined from another vae.pt"):
        checkpoints.first_stage_checkpoints(tmp_path)


def test_detail_weights_single_out_a_speck_and_leave_flat_areas_at_one():
    flat = torch.full((1, 3, 16, 16), 0.3)
    assert torch.allclose(detail_weights(flat, 8.0), torch.ones(1, 1, 16, 16))
    speck = flat.clone()
    speck[:, 0, 7:9, 7:9] = 1.0  # a 2x2 red speck, the world's smallest element
    weights = detail_weights(speck, 8.0)
    assert weights[0, 0, 7, 7] > 5 and abs(weights[0, 0, 0, 0] - 1.0) < 1e-5
    assert torch.equal(detail_weights(speck, 0.0), torch.ones(1, 1, 16, 16))


def test_clip_stage_lowers_both_contrastive_terms(world):
    cfg = tiny_stack("baseline")
    token_map = world_token_map(DEFAULT_TOKENIZER, cfg.text.embedding_rows)
    lines: list[str] = []
    _, _, losses = train_clip(cfg, world, token_map, ContrastiveStage(steps=120, batch=8, lr=3e-3, seed=0), lines.append)
    first = re.search(r"text-image ([0-9.]+) same-recipe ([0-9.]+)", lines[0])
    # Moving averages after 120 steps against the losses of the first batch, at random weights.
    assert losses["contrastive"] < 0.9 * float(first.group(1))
    assert losses["same_recipe"] < 0.9 * float(first.group(2))


def _encoded(cfg, world) -> dict:
    n, t = len(world.frames), len(world.texts)
    g = torch.Generator().manual_seed(0)
    size = cfg.image.image_size // cfg.vae.downscale
    return {
        "latents": torch.randn(n, cfg.vae.latent_channels, size, size, generator=g),
        "text_hidden": torch.randn(t, 77, cfg.text.width, generator=g), "text_pooled": torch.randn(t, cfg.text.width, generator=g),
        "empty_hidden": torch.zeros(1, 77, cfg.text.width), "empty_pooled": torch.zeros(1, cfg.text.width),
        "image_hidden": torch.randn(n, cfg.image.tokens, cfg.image.width, generator=g), "image_pooled": torch.randn(n, cfg.image.width, generator=g),
    }


def _data_parallel_worker(rank: int, rendezvous, world, results) -> None:
    torch.set_num_threads(1)
    data_parallel.join(rendezvous, rank, 2)
    cfg = tiny_stack("attend_to_image")
    unet, fuser, _ = train_unet(cfg, world, _encoded(cfg, world), DENOISING, quiet, fuser_kind="attend_to_image",
                                data_rank=rank, sync_gradients=data_parallel.average_gradients)
    data_parallel.leave()
    # As numpy: a tensor would travel as a shared-memory handle that dies with this process.
    results.put((rank, torch.cat([p.detach().reshape(-1) for p in [*unet.parameters(), *fuser.parameters()]]).numpy()))


def test_data_parallel_processes_end_with_the_same_weights(world, tmp_path):
    ctx = mp.get_context("fork")
    results = ctx.Queue()
    workers = [ctx.Process(target=_data_parallel_worker, args=(rank, tmp_path / "rendezvous", world, results)) for rank in range(2)]
    for w in workers:
        w.start()
    weights = dict(results.get(timeout=120) for _ in workers)
    for w in workers:
        w.join(timeout=30)
        assert w.exitcode == 0
    assert (weights[0] == weights[1]).all()
    # Without synchronisation the two ranks' different batches would have moved them apart.
    cfg = tiny_stack("attend_to_image")
    alone = [train_unet(cfg, world, _encoded(cfg, world), DENOISING, quiet, fuser_kind="attend_to_image", data_rank=r) for r in range(2)]
    flat = [torch.cat([p.detach().reshape(-1) for p in [*u.parameters(), *f.parameters()]]) for u, f, _ in alone]
    assert not torch.equal(flat[0], flat[1])


def test_finetuning_leaves_the_style_term_out_for_the_baseline_only(world):
    """The baseline cannot see the previous image, so the style term is not applied to it; the fusers keep it."""
    styles = {}
    for kind in ("baseline", "concatenation"):
        cfg = tiny_stack(kind)
        text_unet = UNet(cfg.unet).state_dict()
        stage = FinetuneStage(steps=3, batch=4, seed=0, style_weights={"concatenation": 1.0})
        _, _, losses = finetune_from_text(cfg, world, _encoded(cfg, world), text_unet, kind, stage, quiet)
        styles[kind] = losses["style"]
    assert styles["baseline"] == 0.0
    assert styles["concatenation"] > 0.0


def test_train_all_flags_default_to_the_training_config_and_change_only_what_they_name():
    from stepframe_train import train_all

    assert train_all.parse_config([])[0] == TrainingConfig()
    config, _ = train_all.parse_config(["--finetune-steps", "10", "--style-weight", "image_pooling=0", "--no-style-on-unchanged"])
    defaults = TrainingConfig()
    expected = replace(defaults, finetune=replace(defaults.finetune, steps=10, style_weights={**defaults.finetune.style_weights, "image_pooling": 0.0},
                                                  losses=replace(defaults.finetune.losses, style_on_unchanged=False)))
    assert config == expected
    # The fine-tuning of a fuser takes its own style weight, and the baseline none whatever it is given.
    assert config.finetune.run_for("image_pooling").losses.style_weight == 0.0
    assert config.finetune.run_for("concatenation").losses.style_weight == 0.5
    assert replace(config.finetune, style_weights={"baseline": 3.0}).run_for("baseline").losses.style_weight == 0.0


def test_style_weights_take_one_number_for_all_and_fuser_overrides_in_order():
    defaults = FinetuneStage().style_weights
    assert style_weights_from([]) == defaults
    everyone = style_weights_from(["2"])
    assert set(everyone) == set(defaults) and set(everyone.values()) == {2.0}
    mixed = style_weights_from(["1", "image_pooling=3", "image_pooling=0"])
    assert mixed["image_pooling"] == 0.0 and mixed["concatenation"] == 1.0


@pytest.mark.parametrize("word, complaint", [("baseline=1", "'baseline' is not an image-conditioned fuser"), ("pooling=1", "'pooling' is not"),
                                             ("concatenation=", "'' is not a number"), ("-0.5", "finite number >= 0"), ("inf", "finite number >= 0")])
def test_style_weights_name_what_is_wrong(word, complaint):
    with pytest.raises(ValueError, match=re.escape(complaint)):
        style_weights_from([word])


def test_change_weights_favour_what_the_step_changed_and_keep_the_loss_scale():
    previous = torch.zeros(2, 4, 8, 8)
    x0 = previous.clone()
    x0[:, :, 2:4, 2:4] = 1.0  # the step adds something in four cells
    weights = change_weights(x0, previous, torch.tensor([True, False]), strength=2.0)
    assert weights.shape == (2, 1, 8, 8)
    assert torch.allclose(weights.mean(dim=(2, 3)), torch.ones(2, 1))
    changed, unchanged = weights[0, 0, 2, 2], weights[0, 0, 6, 6]
    assert changed > 10 * unchanged
    assert torch.equal(weights[1], torch.ones(1, 8, 8))  # a first step has no previous frame to differ from


def test_style_on_unchanged_pixels_ignores_what_the_step_adds():
    previous = torch.zeros(1, 4, 8, 8)
    x0 = previous.clone()
    x0[:, :, 2:4, 2:4] = 1.0  # the step adds something in four cells
    mask = unchanged_mask(x0, previous)
    assert mask[0, 0, 2:4, 2:4].sum() == 0 and mask.sum() == 60
    fine, coarse = _masked_style_parts(x0, previous, mask)  # drawing the addition costs nothing
    assert fine.item() == 0 and coarse.item() == 0
    drifted = x0 + 0.5  # a different table colour everywhere
    fine, coarse = _masked_style_parts(drifted, previous, mask)
    assert fine.item() == pytest.approx(0.25) and coarse.item() == pytest.approx(0.25)


def test_train_all_pool_workers_end_when_train_all_is_killed(tmp_path):
    """SIGKILL skips the pool's clean-up; the workers' parent-death signal must still end them."""
    pid_file = tmp_path / "worker.pid"
    script = (
        "import multiprocessing as mp, os, sys, time\n"
        "from stepframe_train import train_all\n"
        "def record(path):\n"
        "    open(path, 'w').write(str(os.getpid()))\n"
        "    time.sleep(120)\n"
        "if __name__ == '__main__':\n"
        "    with train_all._pool(mp.get_context('spawn'), 1) as pool:\n"
        f"        pool.apply(record, ({str(pid_file)!r},))\n"
    )
    (tmp_path / "run_pool.py").write_text(script)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).resolve().parents[1]), os.environ.get("PYTHONPATH", "")])}
    parent = subprocess.Popen([sys.executable, str(tmp_path / "run_pool.py")], cwd=tmp_path, env=env)
    worker = None
    try:
        deadline = time.time() + 60
        while not (pid_file.exists() and pid_file.read_text()) and time.time() < deadline:
            time.sleep(0.2)
        worker = int(pid_file.read_text())
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.time() + 10
        while time.time() < deadline and _alive(worker):
            time.sleep(0.2)
        assert not _alive(worker), "the pool worker outlived a killed train_all"
    finally:
        parent.kill()
        if worker is not None and _alive(worker):
            os.kill(worker, signal.SIGKILL)  # so that a failure leaves no sleeper behind


def _alive(pid: int) -> bool:
    """True while `pid` runs (a zombie, reaped by init later, counts as ended)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except FileNotFoundError:
        return False


def test_shape_probe_reads_a_separable_label_and_not_a_random_one():
    from experiments.shape_probe import probe_accuracy

    g = torch.Generator().manual_seed(0)
    x = torch.randn(600, 16, generator=g)
    label = x[:, :3].argmax(1)  # linearly separable, three classes
    noise = torch.randint(3, (600,), generator=g)
    assert probe_accuracy(x[:400], label[:400], x[400:], label[400:], hidden=0, steps=1000) > 0.9
    assert probe_accuracy(x[:400], noise[:400], x[400:], noise[400:], hidden=0, steps=1000) < 0.5
