"""Words of the recipe world. The text encoder's compact token table is built from their CLIP ids."""
from __future__ import annotations

import re

from .world.recipes import ADD, BAKE, CHOP, SPRINKLE, SPRINKLES, STIR, TOOLS, VEGETABLES

# Common recipe words beyond the world's templates, so nearby phrasings still map to learned rows.
EXTRA = (
    "a", "and", "to", "in", "on", "into", "over", "with", "of", "top", "everything", "together", "until", "golden",
    "all", "them", "it", "some", "for", "minutes", "well", "gently", "then", "finely", "evenly", "chopped", "sliced",
    "diced", "whole", "fresh", "salt", "little", "more", "now", "next", "finally", "first", "boil", "fry", "cook",
    "serve", "grate", "heat", "season", "rice", "lemon", "herbs", "plate", "oven",
)


def world_words() -> tuple[str, ...]:
    words: list[str] = []
    for template in CHOP + ADD + STIR + SPRINKLE + BAKE:
        words += re.findall(r"[a-z]+", template)
    words += list(VEGETABLES) + list(SPRINKLES) + list(TOOLS) + list(EXTRA)
    return tuple(dict.fromkeys(words))
