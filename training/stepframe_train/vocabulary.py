"""Words of the recipe world. The text encoder's compact token table is built from their CLIP ids."""
from __future__ import annotations

INGREDIENTS = (
    "tomatoes", "carrots", "onions", "peppers", "spinach", "mushrooms", "cheese", "potatoes",
    "peas", "corn", "eggs", "rice", "beans", "olives", "lemon", "herbs",
)
ACTIONS = ("chop", "slice", "dice", "add", "stir", "mix", "sprinkle", "bake", "fry", "boil", "season", "put", "place", "pour", "toss", "cook", "serve", "grate", "heat", "scatter")
TOOLS = ("pan", "pot", "bowl", "dish", "tray", "plate", "skillet", "oven")
FILLERS = (
    "the", "a", "and", "to", "in", "on", "into", "over", "with", "of", "top", "everything", "together",
    "until", "golden", "all", "them", "it", "some", "for", "minutes", "well", "gently", "then", "finely",
    "evenly", "chopped", "sliced", "diced", "whole", "fresh", "salt", "pepper", "bit", "little", "more",
    "now", "next", "finally", "first",
)


def world_words() -> tuple[str, ...]:
    return INGREDIENTS + ACTIONS + TOOLS + FILLERS
