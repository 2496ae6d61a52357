"""CLIP's byte-level BPE, for the training side (tokenising the recipe world's ASCII sentences).

The serving side has its own exact port (src/pipeline/tokenizer.ts) with CLIP's full text clean-up;
this one only lower-cases and collapses whitespace, which is all the generated world needs.
"""
from __future__ import annotations

import json
import re
from functools import lru_cache
from pathlib import Path

from .config import CLIP_BOS_ID, CLIP_EOS_ID, TEXT_MAX_LENGTH

# CLIP's pre-tokenisation pattern with \p{L} / \p{N} approximated by Python's Unicode classes.
_PATTERN = re.compile(r"<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[^\W\d_]+|\d|[^\s\w]+|_+", re.IGNORECASE)


@lru_cache(maxsize=1)
def bytes_to_unicode() -> dict[int, str]:
    """GPT-2/CLIP's reversible map from bytes to printable characters."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), ord("ÿ") + 1))
    chars = printable[:]
    extra = 0
    for b in range(256):
        if b not in printable:
            printable.append(b)
            chars.append(256 + extra)
            extra += 1
    return dict(zip(printable, map(chr, chars)))


class ClipTokenizer:
    def __init__(self, vocab: dict[str, int], merges: list[tuple[str, str]]):
        self.vocab = vocab
        self.ranks = {pair: i for i, pair in enumerate(merges)}
        self.byte_map = bytes_to_unicode()
        self._cache: dict[str, list[str]] = {}

    @staticmethod
    def load(directory: str | Path) -> "ClipTokenizer":
        directory = Path(directory)
        vocab = json.loads((directory / "vocab.json").read_text(encoding="utf-8"))
        lines = (directory / "merges.txt").read_text(encoding="utf-8").split("\n")
        merges = [tuple(line.split(" ")) for line in lines[1:] if line]
        return ClipTokenizer(vocab, merges)  # type: ignore[arg-type]

    def _bpe(self, word: str) -> list[str]:
        if word in self._cache:
            return self._cache[word]
        parts = list(word[:-1]) + [word[-1] + "</w>"]
        while len(parts) > 1:
            pairs = [(self.ranks.get((a, b), 1 << 30), i) for i, (a, b) in enumerate(zip(parts, parts[1:]))]
            rank, _ = min(pairs)
            if rank == 1 << 30:
                break
            first, second = [p for p in zip(parts, parts[1:])][min(i for r, i in pairs if r == rank)]
            merged: list[str] = []
            i = 0
            while i < len(parts):
                if i < len(parts) - 1 and parts[i] == first and parts[i + 1] == second:
                    merged.append(first + second)
                    i += 2
                else:
                    merged.append(parts[i])
                    i += 1
            parts = merged
        self._cache[word] = parts
        return parts

    def encode(self, text: str) -> list[int]:
        """BOS, BPE ids, EOS; truncated to 77 ids keeping EOS; not padded."""
        text = re.sub(r"\s+", " ", text).strip().lower()
        ids: list[int] = []
        for token in _PATTERN.findall(text):
            word = "".join(self.byte_map[b] for b in token.encode("utf-8"))
            ids.extend(self.vocab[piece] for piece in self._bpe(word))
        return [CLIP_BOS_ID] + ids[: TEXT_MAX_LENGTH - 2] + [CLIP_EOS_ID]

    def encode_padded(self, text: str) -> list[int]:
        """77 ids, padded with EOS as SD 1.x's tokenizer does."""
        ids = self.encode(text)
        return ids + [CLIP_EOS_ID] * (TEXT_MAX_LENGTH - len(ids))
