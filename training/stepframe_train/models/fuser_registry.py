"""Every fuser kind by name: the paper's six (FUSER_KINDS, the shipped bundles) and the sequence fusers beyond it."""
from __future__ import annotations

from .fusers import FUSER_KINDS, PAPER_FUSERS, Fuser
from .sequence_fusers import SEQUENCE_FUSERS

_FUSERS: dict[str, type[Fuser]] = {cls.kind: cls for cls in PAPER_FUSERS + SEQUENCE_FUSERS}
# Trained by experiments.sequence_fusers, not by train_all: the six are the paper's table.
SEQUENCE_FUSER_KINDS = tuple(cls.kind for cls in SEQUENCE_FUSERS)
ALL_FUSER_KINDS = FUSER_KINDS + SEQUENCE_FUSER_KINDS
assert tuple(_FUSERS) == ALL_FUSER_KINDS, "FUSER_KINDS and PAPER_FUSERS disagree"


def fuser_class(kind: str) -> type[Fuser]:
    if kind not in _FUSERS:
        raise ValueError(f"unknown fuser kind {kind!r}; expected one of {', '.join(ALL_FUSER_KINDS)}")
    return _FUSERS[kind]


def build_fuser(kind: str, text_dim: int, text_tokens: int, image_dim: int, image_tokens: int, out_dim: int, hidden: int,
                image_pooled_dim: int | None = None) -> Fuser:
    cls = fuser_class(kind)
    if kind == "baseline" and text_dim != out_dim:
        raise ValueError(f"the baseline fuser passes the text through, so text width {text_dim} must equal the UNet's {out_dim}")
    return cls(text_dim, text_tokens, image_dim, image_tokens, out_dim, hidden, image_pooled_dim=image_pooled_dim)
