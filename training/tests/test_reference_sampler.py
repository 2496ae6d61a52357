"""The reference sampler behind every trained-bundle figure: its schedules, guidance and sequence loop."""
import pytest
import torch

from stepframe_train.clip_tokenizer import ClipTokenizer
from stepframe_train.export import DEFAULT_TOKENIZER, random_bundles
from stepframe_train.reference_sampler import DiscreteScheduler, ReferenceSampler, SamplerSettings, guided_eps


@pytest.mark.parametrize("kind", ["ddpm", "ddim"])
def test_fifty_steps_use_sd_leading_spacing(kind):
    # diffusers with SD 1.x's scheduler_config.json: timestep_spacing "leading", steps_offset 1.
    assert DiscreteScheduler(kind, 50).timesteps == list(range(981, 0, -20))
    assert DiscreteScheduler(kind, 10).timesteps == list(range(901, 0, -100))


def test_ddim_with_the_true_noise_lands_on_the_clean_latent():
    """Given the exact noise at every step, DDIM (eta 0) walks the line between x0 and it: the last step
    leaves sqrt(acp[0]) x0 + sqrt(1 - acp[0]) eps, SD's final alpha being acp[0] (set_alpha_to_one false)."""
    scheduler = DiscreteScheduler("ddim", 25)
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    a = scheduler.acp[scheduler.timesteps[0]]
    x = a.sqrt() * x0 + (1 - a).sqrt() * eps
    for i in range(len(scheduler.timesteps)):
        x = scheduler.step(eps, i, x, g)
    a0 = scheduler.acp[0]
    assert torch.allclose(x, a0.sqrt() * x0 + (1 - a0).sqrt() * eps, atol=1e-5)


def test_ddpm_last_step_returns_the_predicted_clean_latent():
    scheduler = DiscreteScheduler("ddpm", 50)
    g = torch.Generator().manual_seed(1)
    x0, eps = torch.randn(1, 4, 8, 8, generator=g), torch.randn(1, 4, 8, 8, generator=g)
    last = len(scheduler.timesteps) - 1
    a = scheduler.acp[scheduler.timesteps[last]]
    x = a.sqrt() * x0 + (1 - a).sqrt() * eps
    assert torch.allclose(scheduler.step(eps, last, x, g), x0, atol=1e-4)


def test_guidance_combines_the_rows_as_instruct_pix2pix_does():
    cond, no_text, nothing = torch.tensor([5.0]), torch.tensor([2.0]), torch.tensor([1.0])
    three = SamplerSettings(guidance_scale=4.0, image_guidance_scale=1.5)
    assert guided_eps((cond, no_text, nothing), "text_and_image", three).item() == pytest.approx(1 + 1.5 * (2 - 1) + 4 * (5 - 2))
    assert guided_eps((cond, no_text), "text", three).item() == pytest.approx(2 + 4 * (5 - 2))
    assert guided_eps((cond,), "none", three).item() == 5.0
    ones = SamplerSettings(guidance_scale=1.0, image_guidance_scale=1.0)
    assert guided_eps((cond, no_text, nothing), "text_and_image", ones).item() == pytest.approx(5.0), "scales of 1 give the conditional row"


@pytest.fixture(scope="module")
def sampler():
    shared, specs = random_bundles(7, "tiny", ("concatenation",), DEFAULT_TOKENIZER)
    return ReferenceSampler(shared, specs[0], ClipTokenizer.load(DEFAULT_TOKENIZER), image_guidance=True)


def test_guidance_mode_follows_the_settings_and_the_bundle(sampler):
    assert sampler.guidance_mode(SamplerSettings(guidance_scale=1.0)) == "none"
    assert sampler.guidance_mode(SamplerSettings(guidance_scale=4.0)) == "text"
    assert sampler.guidance_mode(SamplerSettings(guidance_scale=4.0, image_guidance_scale=1.5)) == "text_and_image"


def test_each_step_is_conditioned_on_the_frame_before_it(sampler, monkeypatch):
    seen = []
    original = sampler.conditioning

    firsts = []

    def recording(text, frame, mode, first_frame=None):
        seen.append(None if frame is None else frame.clone())
        firsts.append(first_frame)
        return original(text, frame, mode, first_frame)

    monkeypatch.setattr(sampler, "conditioning", recording)
    settings = SamplerSettings(num_inference_steps=2, guidance_scale=4.0, image_guidance_scale=1.5, seed=3)
    init = torch.full((3, 64, 64), 128, dtype=torch.uint8)
    frames = sampler.sample_sequence(["chop the carrots", "add the carrots to the pan", "stir"], settings, init_frame=init)
    assert len(frames) == 3 and all(f.dtype == torch.uint8 and f.shape == (3, 64, 64) for f in frames)
    assert torch.equal(seen[0], init)
    assert torch.equal(seen[1], frames[0]) and torch.equal(seen[2], frames[1])
    assert all(torch.equal(first, init) for first in firsts), "with an init image, it is the first frame"
    firsts.clear()
    frames = sampler.sample_sequence(["chop the carrots", "add the carrots to the pan", "stir"], settings)
    assert firsts[0] is None and torch.equal(firsts[1], frames[0]) and torch.equal(firsts[2], frames[0]), "else the first image generated"


def test_a_sequence_is_reproducible_and_each_step_draws_its_own_noise(sampler):
    settings = SamplerSettings(num_inference_steps=3, guidance_scale=4.0, seed=5)
    a = sampler.sample_sequence(["stir", "stir"], settings)
    b = sampler.sample_sequence(["stir", "stir"], settings)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    other = sampler.sample_sequence(["stir", "stir"], SamplerSettings(num_inference_steps=3, guidance_scale=4.0, seed=6))
    assert not torch.equal(a[0], other[0])
