"""Fusers beyond the paper's six, for consistency along the whole sequence (issue 35, docs/experiments.md).

- `anchor_concatenation`: the paper's concatenation fuser that also sees the sequence's first frame, whose table,
  vessel and style every later frame should keep; the previous frame still says what is in the vessel so far.
- `decoupled`: leaves the text path whole. The UNet gets the step's 77 text tokens exactly as the text-only baseline
  does, followed by the previous image's tokens, which a UNet built with `image_context_tokens` attends to on a
  cross-attention of its own (IP-Adapter's decoupled cross-attention, Ye et al. 2023), added to the text attention.
- `anchor_decoupled`: both: the image path carries the previous and the first frame's tokens.

The first-frame fusers take the first frame's encoding as two more inputs (first_image_hidden_states,
first_image_pooled in the bundle's fuser graph); called without them, the first frame is the previous one (as it is
for a sequence's second image).
"""
from __future__ import annotations

import torch
from torch import nn

from .fusers import FeedForward, Fuser, TokenMix, start_token_mix_from_text


class AnchorConcatenationFuser(Fuser):
    """Concatenation over the text, the previous frame's and the first frame's tokens, token-mixed to 77."""

    kind = "anchor_concatenation"
    uses_first_frame = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.image_proj = nn.Linear(self.image_dim, self.text_dim)
        self.first_image_proj = nn.Linear(self.image_dim, self.text_dim)
        self.token_mix = TokenMix(self.text_tokens + 2 * self.image_tokens, self.text_tokens)
        self.ffn = FeedForward(self.text_dim, self.hidden)
        self.out_proj = nn.Linear(self.text_dim, self.out_dim)

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        first = image_hidden if first_image_hidden is None else first_image_hidden
        tokens = torch.cat([text_hidden, self.image_proj(image_hidden), self.first_image_proj(first)], dim=1)
        return self.out_proj(self.ffn(self.token_mix(tokens)))

    def start_from_text(self) -> None:
        start_token_mix_from_text(self)


class DecoupledFuser(Fuser):
    """The text tokens untouched, then the previous image's tokens projected to the UNet's width (Linear + LayerNorm,
    IP-Adapter's image projection): [B, 77 + Ni, D]. The UNet (image_context_tokens = Ni) starts its image attention at
    zero output (UNet.load_text_only), so fine-tuning starts from exactly the text-only model."""

    kind = "decoupled"
    decoupled_frames = 1

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.text_dim != self.out_dim:
            raise ValueError(f"the {self.kind} fuser passes the text through, so text width {self.text_dim} must equal the UNet's {self.out_dim}")
        self.image_proj = nn.Linear(self.image_dim, self.out_dim)
        self.image_norm = nn.LayerNorm(self.out_dim)

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        return torch.cat([text_hidden, self.image_norm(self.image_proj(image_hidden))], dim=1)


class AnchorDecoupledFuser(DecoupledFuser):
    """The decoupled fuser whose image path carries the first frame's tokens after the previous frame's: [B, 77 + 2 Ni, D]."""

    kind = "anchor_decoupled"
    uses_first_frame = True
    decoupled_frames = 2

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.first_image_proj = nn.Linear(self.image_dim, self.out_dim)
        self.first_image_norm = nn.LayerNorm(self.out_dim)

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        first = image_hidden if first_image_hidden is None else first_image_hidden
        previous = self.image_norm(self.image_proj(image_hidden))
        return torch.cat([text_hidden, previous, self.first_image_norm(self.first_image_proj(first))], dim=1)


SEQUENCE_FUSERS: tuple[type[Fuser], ...] = (AnchorConcatenationFuser, DecoupledFuser, AnchorDecoupledFuser)
