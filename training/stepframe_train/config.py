"""Sizes of the miniature stack. One frozen dataclass per model, grouped in `StackConfig`.

The shapes mirror SD 1.x + CLIP ViT-L/14 (77 text tokens, CLS + patch tokens, a KL autoencoder,
a cross-attention UNet); only the widths and depths are scaled down.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

CLIP_VOCAB_SIZE = 49408
CLIP_BOS_ID = 49406
CLIP_EOS_ID = 49407
TEXT_MAX_LENGTH = 77


@dataclass(frozen=True)
class TextEncoderConfig:
    """The text encoder. `embedding_rows` is the size of the (compact) token table.

    `kind` "transformer" is CLIP's causal text transformer (the bundles' encoder); "bag" is a bag of tokens, per-token
    feed-forward blocks with no positions and no attention, mean-pooled (models/bag_text_encoder.py), which the
    encoder grid compares against it. `heads` means nothing to a bag.
    """

    kind: str = "transformer"
    embedding_rows: int = 512
    max_length: int = TEXT_MAX_LENGTH
    width: int = 64
    layers: int = 2
    heads: int = 4


@dataclass(frozen=True)
class ImageEncoderConfig:
    """The image encoder. `kind` "vit" is CLIP's ViT (patch embedding, a CLS token, pre/post layer norms), the bundles'
    encoder; "conv" is a convolutional network whose last feature map, one cell per `patch_size` square, gives the
    tokens (models/conv_image_encoder.py), which the encoder grid compares against it. `heads` means nothing to "conv".
    """

    kind: str = "vit"
    image_size: int = 64
    patch_size: int = 8
    width: int = 64
    layers: int = 2
    heads: int = 4

    @property
    def tokens(self) -> int:
        """Hidden-state tokens: one per patch, plus the ViT's CLS token."""
        return (self.image_size // self.patch_size) ** 2 + (1 if self.kind == "vit" else 0)


@dataclass(frozen=True)
class VaeConfig:
    """KL autoencoder; each entry of `channels` after the first adds a 2x downsampling."""

    image_channels: int = 3
    # 8 rather than SD's 4: at a 4x downscale a 2x2 speck is a quarter of a latent cell, and 4 channels blur it away.
    latent_channels: int = 8
    # One 16x16 stage after a 4x4 space-to-depth fold: the same 16x16 latents as SD's three stages at a quarter of the
    # cost (no convolution runs at 64x64), and every latent cell sees its own pixels directly, which keeps small
    # pieces sharp: 27.3 vs 24.6 dB held-out after 1400 steps at batch 8 (docs/experiments.md).
    channels: tuple[int, ...] = (64,)
    groups: int = 8
    scaling_factor: float = 0.18215
    # Pixels folded into channels before the first stage (space-to-depth) and unfolded after the last;
    # 1 is SD's layout. Each fold also divides the image size by `patch`.
    patch: int = 4

    @property
    def downscale(self) -> int:
        return self.patch * 2 ** (len(self.channels) - 1)


@dataclass(frozen=True)
class UnetConfig:
    """Cross-attention UNet; one ResNet block per level, each followed by a transformer block from `cross_attention_from_level` on."""

    latent_channels: int = 8
    # Three levels (16x16, 8x8, 4x4) with attention only on the two coarser ones: the finest level's cross-attention
    # (256 queries x 77 keys) took over half of a training step, and conditioning reaches it through the skip path.
    # 0.29 vs 0.45 s per step against (32, 48) with attention everywhere, and a lower loss at equal wall time (docs/experiments.md).
    channels: tuple[int, ...] = (32, 48, 40)
    cross_attention_dim: int = 64
    heads: int = 4
    groups: int = 8
    # Levels below this one have no transformer at all (ResNet blocks only); SD 1.x leaves out its coarsest level instead.
    cross_attention_from_level: int = 1
    # Levels below this one have cross- but no self-attention, whose cost grows with (h*w)^2.
    self_attention_from_level: int = 1
    # Image tokens at the end of encoder_hidden_states that get a cross-attention of their own beside the text's
    # (IP-Adapter's decoupled cross-attention; the `decoupled` fusers). 0: every token goes through one attention, as in SD.
    image_context_tokens: int = 0


@dataclass(frozen=True)
class FuserConfig:
    """The fuser maps (text, image) encodings to the UNet's [B, 77, cross_attention_dim] conditioning."""

    kind: str = "concatenation"
    hidden: int = 128


@dataclass(frozen=True)
class StackConfig:
    text: TextEncoderConfig = field(default_factory=TextEncoderConfig)
    image: ImageEncoderConfig = field(default_factory=ImageEncoderConfig)
    vae: VaeConfig = field(default_factory=VaeConfig)
    unet: UnetConfig = field(default_factory=UnetConfig)
    fuser: FuserConfig = field(default_factory=FuserConfig)

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(raw: dict) -> "StackConfig":
        def tuples(d: dict) -> dict:
            return {k: tuple(v) if isinstance(v, list) else v for k, v in d.items()}

        return StackConfig(
            text=TextEncoderConfig(**raw["text"]),
            image=ImageEncoderConfig(**raw["image"]),
            vae=VaeConfig(**tuples(raw["vae"])),
            unet=UnetConfig(**tuples(raw["unet"])),
            fuser=FuserConfig(**raw["fuser"]),
        )


def tiny_stack(fuser_kind: str) -> StackConfig:
    """The smallest stack that still exercises every code path; used for committed test fixtures."""
    return StackConfig(
        text=TextEncoderConfig(embedding_rows=256, width=32, layers=1, heads=2),
        image=ImageEncoderConfig(patch_size=16, width=32, layers=1, heads=2),
        vae=VaeConfig(latent_channels=4, channels=(16, 16), groups=4, patch=2),  # patch 2: the fixtures cover the fold
        unet=UnetConfig(latent_channels=4, channels=(16, 32), cross_attention_dim=32, heads=2, groups=4),
        fuser=FuserConfig(kind=fuser_kind, hidden=32),
    )


def default_stack(fuser_kind: str) -> StackConfig:
    return StackConfig(fuser=FuserConfig(kind=fuser_kind))
