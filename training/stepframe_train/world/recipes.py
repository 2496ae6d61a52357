"""Recipes as step texts plus the dish state after each step, deterministic from a seed."""
from __future__ import annotations

import random
from dataclasses import dataclass, field, replace

# name -> RGB; chosen to be far apart in chromaticity so a probe can tell them apart.
VEGETABLES: dict[str, tuple[int, int, int]] = {
    "tomatoes": (215, 35, 35),
    "carrots": (245, 125, 20),
    "peppers": (40, 175, 55),
    "spinach": (25, 95, 35),
    "mushrooms": (140, 100, 70),
    "potatoes": (225, 195, 110),
    "peas": (140, 220, 80),
    "corn": (250, 215, 30),
    "onions": (185, 120, 200),
    "beans": (110, 40, 30),
    "olives": (45, 45, 40),
    "eggs": (250, 245, 225),
}
SPRINKLES: dict[str, tuple[int, int, int]] = {"cheese": (255, 225, 120), "herbs": (70, 210, 70), "pepper": (30, 30, 30)}
TOOLS = ("pan", "pot", "bowl", "dish", "skillet", "tray")

CHOP = ("chop the {x}", "dice the {x}", "slice the {x}", "finely chop the {x}")
ADD = ("add the {x} to the {tool}", "put the {x} in the {tool}", "place the {x} into the {tool}", "add the {x}")
STIR = ("stir everything together", "mix everything well", "stir it gently", "toss everything together")
SPRINKLE = ("sprinkle the {s} on top", "scatter the {s} over the top", "sprinkle some {s} over it")
BAKE = ("bake until golden", "bake it in the oven", "bake for a few minutes until golden")


@dataclass(frozen=True)
class DishState:
    """What the image after a step shows."""

    board: tuple[str, bool] | None = None  # ingredient on the board and whether it is chopped
    vessel: tuple[tuple[str, bool], ...] = ()  # ingredients in the vessel, in order, with chopped flags
    stirred: int = 0  # how many times stirred (re-arranges the pieces)
    sprinkles: tuple[str, ...] = ()
    baked: bool = False


@dataclass(frozen=True)
class Step:
    text: str
    action: str  # chop | add | stir | sprinkle | bake
    subject: str | None  # the ingredient the step introduces, if any
    state: DishState


@dataclass(frozen=True)
class Recipe:
    recipe_id: int
    steps: tuple[Step, ...]
    style_seed: int = field(default=0)


def make_recipe(recipe_id: int, seed: int) -> Recipe:
    rng = random.Random(seed * 1_000_003 + recipe_id)
    veg = rng.sample(sorted(VEGETABLES), rng.randint(1, 3))
    state = DishState()
    steps: list[Step] = []
    for x in veg:
        if rng.random() < 0.6:
            state = replace(state, board=(x, True))
            steps.append(Step(rng.choice(CHOP).format(x=x), "chop", x, state))
        chopped = state.board is not None and state.board[0] == x
        state = replace(state, board=None, vessel=state.vessel + ((x, chopped),))
        steps.append(Step(rng.choice(ADD).format(x=x, tool=rng.choice(TOOLS)), "add", x, state))
    if len(state.vessel) >= 2 or rng.random() < 0.5:
        state = replace(state, stirred=state.stirred + 1)
        steps.append(Step(rng.choice(STIR), "stir", None, state))
    if rng.random() < 0.6:
        s = rng.choice(sorted(SPRINKLES))
        state = replace(state, sprinkles=state.sprinkles + (s,))
        steps.append(Step(rng.choice(SPRINKLE).format(s=s), "sprinkle", s, state))
    if rng.random() < 0.4:
        state = replace(state, baked=True)
        steps.append(Step(rng.choice(BAKE), "bake", None, state))
    while len(steps) < 3:  # pad short recipes with another ingredient
        x = rng.choice([v for v in sorted(VEGETABLES) if v not in veg])
        veg.append(x)
        state = replace(state, vessel=state.vessel + ((x, False),))
        steps.append(Step(rng.choice(ADD).format(x=x, tool=rng.choice(TOOLS)), "add", x, state))
    return Recipe(recipe_id, tuple(steps[:8]), style_seed=rng.randrange(1 << 30))


SPLITS = {"train": (0, 6000), "val": (6000, 6200), "test": (6200, 6264)}


def split(name: str, seed: int = 0) -> list[Recipe]:
    start, stop = SPLITS[name]
    return [make_recipe(i, seed) for i in range(start, stop)]
