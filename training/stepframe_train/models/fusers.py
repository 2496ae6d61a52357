"""The paper's six ways of fusing the step text with the previous image into the UNet's conditioning.

Every fuser takes (text_hidden [B, 77, Dt], text_pooled [B, Dt], image_hidden [B, Ni, Di],
image_pooled [B, Di]) and returns encoder_hidden_states [B, 77, Dc].

The paper's concatenation fuser runs a dense feed-forward network over the flattened concatenation
of both encoders' outputs. At SD scale that layer would hold (77*768 + 257*1024) * 77*768 ~ 2.6e10
weights, so here (as any practical version must) it is factorised into a token-mixing layer, which
maps the 77 + Ni concatenated tokens to 77, and a per-token channel feed-forward network. The same
token-mixing layer is the "reshape" of the fusers whose output starts as Ni image tokens.
"""
from __future__ import annotations

import torch
from torch import nn

from .layers import MultiHeadAttention

FUSER_KINDS = ("baseline", "concatenation", "text_pooling", "image_pooling", "attend_to_image", "attend_to_text")


class FeedForward(nn.Module):
    """Residual pre-LN MLP applied to every token."""

    def __init__(self, dim: int, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(dim)
        self.net = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.net(self.norm(x))


class TokenMix(nn.Module):
    """A linear map along the token axis: [B, N_in, D] -> [B, N_out, D]."""

    def __init__(self, n_in: int, n_out: int):
        super().__init__()
        self.linear = nn.Linear(n_in, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(x.transpose(1, 2)).transpose(1, 2)


class CrossAttention(nn.Module):
    """Pre-LN residual cross-attention: queries from one modality, keys/values from the other."""

    def __init__(self, query_dim: int, context_dim: int, heads: int):
        super().__init__()
        self.norm_q = nn.LayerNorm(query_dim)
        self.norm_kv = nn.LayerNorm(context_dim)
        self.attn = MultiHeadAttention(query_dim, heads, context_dim)

    def forward(self, queries: torch.Tensor, context: torch.Tensor) -> torch.Tensor:
        return queries + self.attn(self.norm_q(queries), self.norm_kv(context))


class Fuser(nn.Module):
    """Common signature; `kind` names the method.

    The fusers that see the sequence's first frame as well (models/sequence_fusers.py) take its encoding as two more
    arguments; the paper's six leave them unused.
    """

    kind = ""
    # Takes the first frame's encoding (first_image_hidden, first_image_pooled) besides the previous frame's.
    uses_first_frame = False

    def __init__(self, text_dim: int, text_tokens: int, image_dim: int, image_tokens: int, out_dim: int, hidden: int,
                 image_pooled_dim: int | None = None):
        super().__init__()
        self.text_dim, self.text_tokens = text_dim, text_tokens
        self.image_dim, self.image_tokens = image_dim, image_tokens
        # CLIPVisionModelWithProjection pools into its projection's width (768 for ViT-L/14), not its tokens' (1024).
        self.image_pooled_dim = image_pooled_dim or image_dim
        self.out_dim, self.hidden = out_dim, hidden

    # How many frames' token sets the output carries after the text, for the UNet's decoupled image attention.
    decoupled_frames = 0

    @property
    def image_context_tokens(self) -> int:
        """How many of the output's tokens, at the end, are image tokens for that attention (UnetConfig.image_context_tokens)."""
        return self.decoupled_frames * self.image_tokens

    @property
    def context_tokens(self) -> int:
        """How many conditioning tokens the output has (the UNet's encoder_hidden_states length)."""
        return self.text_tokens + self.image_context_tokens

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None) -> torch.Tensor:  # pragma: no cover
        raise NotImplementedError

    def start_from_text(self) -> None:
        """Initialise so that the output starts equal (or close) to the text encoding.

        Fine-tuning then starts from the shared text-only UNet's behaviour, which keeps the
        comparison between fusers fair. Random-weight test bundles skip this on purpose, so the
        image path of every fuser has a visible effect.
        """


def _zero(module: nn.Linear) -> None:
    nn.init.zeros_(module.weight)
    nn.init.zeros_(module.bias)


def start_token_mix_from_text(fuser: Fuser) -> None:
    """For a fuser whose tokens (the 77 text tokens first) pass token_mix, ffn and out_proj: the mix keeps just the text
    tokens, the feed-forward adds nothing and the projection is the identity, so the output starts as the text encoding."""
    with torch.no_grad():
        weight = torch.zeros_like(fuser.token_mix.linear.weight)
        weight[:, : fuser.text_tokens] = torch.eye(fuser.text_tokens)
        fuser.token_mix.linear.weight.copy_(weight)
        fuser.token_mix.linear.bias.zero_()
        _zero(fuser.ffn.net[2])
        fuser.out_proj.weight.copy_(torch.eye(fuser.out_dim, fuser.text_dim))
        fuser.out_proj.bias.zero_()


class BaselineFuser(Fuser):
    """Plain Stable Diffusion: the text encoding is the conditioning and the image is ignored."""

    kind = "baseline"

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        return text_hidden


class ConcatenationFuser(Fuser):
    """Concatenate text and (projected) image tokens, feed-forward over the concatenation, reshape to 77 tokens."""

    kind = "concatenation"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.image_proj = nn.Linear(self.image_dim, self.text_dim)
        self.token_mix = TokenMix(self.text_tokens + self.image_tokens, self.text_tokens)
        self.ffn = FeedForward(self.text_dim, self.hidden)
        self.out_proj = nn.Linear(self.text_dim, self.out_dim)

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        tokens = torch.cat([text_hidden, self.image_proj(image_hidden)], dim=1)
        return self.out_proj(self.ffn(self.token_mix(tokens)))

    def start_from_text(self) -> None:
        start_token_mix_from_text(self)


class ImagePoolingFuser(Fuser):
    """Project the pooled image embedding to the text width, add it to every text token, feed-forward."""

    kind = "image_pooling"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.image_proj = nn.Linear(self.image_pooled_dim, self.text_dim)
        self.ffn = FeedForward(self.text_dim, self.hidden)
        self.out_proj = nn.Linear(self.text_dim, self.out_dim)

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        tokens = text_hidden + self.image_proj(image_pooled)[:, None, :]
        return self.out_proj(self.ffn(tokens))

    def start_from_text(self) -> None:
        with torch.no_grad():
            _zero(self.ffn.net[2])
            self.out_proj.weight.copy_(torch.eye(self.out_dim, self.text_dim))
            self.out_proj.bias.zero_()
            self.image_proj.weight.mul_(0.1)
            self.image_proj.bias.zero_()


class TextPoolingFuser(Fuser):
    """The reverse: project the pooled text embedding to the image width, add it to every image token,
    feed-forward, then reshape the Ni image tokens to 77 conditioning tokens."""

    kind = "text_pooling"

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.text_proj = nn.Linear(self.text_dim, self.image_dim)
        self.ffn = FeedForward(self.image_dim, self.hidden)
        self.token_mix = TokenMix(self.image_tokens, self.text_tokens)
        self.out_proj = nn.Linear(self.image_dim, self.out_dim)

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        tokens = image_hidden + self.text_proj(text_pooled)[:, None, :]
        return self.out_proj(self.token_mix(self.ffn(tokens)))


class AttendToImageFuser(Fuser):
    """Cross-attention with the text tokens as queries and the image tokens as keys and values."""

    kind = "attend_to_image"

    def __init__(self, *args, heads: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        self.attend = CrossAttention(self.text_dim, self.image_dim, heads)
        self.ffn = FeedForward(self.text_dim, self.hidden)
        self.out_proj = nn.Linear(self.text_dim, self.out_dim)

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        return self.out_proj(self.ffn(self.attend(text_hidden, image_hidden)))

    def start_from_text(self) -> None:
        with torch.no_grad():
            _zero(self.attend.attn.to_out)
            _zero(self.ffn.net[2])
            self.out_proj.weight.copy_(torch.eye(self.out_dim, self.text_dim))
            self.out_proj.bias.zero_()


class AttendToTextFuser(Fuser):
    """The reverse: image tokens as queries, text tokens as keys and values, then reshaped to 77 tokens."""

    kind = "attend_to_text"

    def __init__(self, *args, heads: int = 4, **kwargs):
        super().__init__(*args, **kwargs)
        self.attend = CrossAttention(self.image_dim, self.text_dim, heads)
        self.ffn = FeedForward(self.image_dim, self.hidden)
        self.token_mix = TokenMix(self.image_tokens, self.text_tokens)
        self.out_proj = nn.Linear(self.image_dim, self.out_dim)

    def forward(self, text_hidden, text_pooled, image_hidden, image_pooled, first_image_hidden=None, first_image_pooled=None):
        return self.out_proj(self.token_mix(self.ffn(self.attend(image_hidden, text_hidden))))


PAPER_FUSERS: tuple[type[Fuser], ...] = (BaselineFuser, ConcatenationFuser, TextPoolingFuser, ImagePoolingFuser, AttendToImageFuser, AttendToTextFuser)
