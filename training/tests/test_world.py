import numpy as np
import pytest

from stepframe_train.world.metrics import (colour_count, drawn_vessel_shape, probe_kind, probe_row, probe_target, psnr, rim_colour, shape_kept_share,
                                          style_error, style_parts, style_rows_by_position, summarise, text_probe)
from stepframe_train.world.recipes import make_recipe, split
from stepframe_train.world.render import SHAPES, recipe_style, render, render_recipe, vessel_masks


def test_recipes_are_deterministic_and_within_3_to_8_steps():
    a, b = split("val")[:50], split("val")[:50]
    assert [[s.text for s in r.steps] for r in a] == [[s.text for s in r.steps] for r in b]
    assert all(3 <= len(r.steps) <= 8 for r in split("train")[:500])
    assert np.array_equal(render_recipe(a[0]), render_recipe(b[0]))


def test_splits_do_not_overlap():
    ids = [{r.recipe_id for r in split(name)} for name in ("train", "val", "test")]
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_style_is_constant_within_a_recipe_and_never_in_the_text():
    recipe = make_recipe(6201, 0)
    style = recipe_style(recipe)
    frames = render_recipe(recipe)
    assert all(style_error(recipe, f, frames[0]) < 15 for f in frames)  # only contents and baking change
    words = " ".join(s.text for s in recipe.steps)
    assert style.shape not in words


def test_each_step_shows_its_effect():
    recipe = next(r for r in split("train")[:200] if any(s.action == "add" for s in r.steps))
    frames = render_recipe(recipe)
    for i, step in enumerate(recipe.steps):
        target = probe_target(recipe, step)
        if target is None:
            continue
        rgb, region = target
        before = colour_count(frames[i - 1], rgb, region) if i else 0
        assert colour_count(frames[i], rgb, region) > before, step.text


def test_probe_passes_on_the_reference_and_fails_on_the_frame_before():
    failures_before = probes = 0
    for recipe in split("test")[:20]:
        frames = render_recipe(recipe)
        for i, step in enumerate(recipe.steps[1:], start=1):
            result = text_probe(recipe, step, frames[i], frames[i])
            if result is None:
                continue
            probes += 1
            assert result, step.text
            failures_before += not text_probe(recipe, step, frames[i - 1], frames[i])
    assert probes > 10 and failures_before / probes > 0.6


def test_metrics_are_zero_for_identical_frames():
    recipe = make_recipe(6200, 0)
    frame = render(recipe, recipe.steps[-1].state)
    assert style_error(recipe, frame, frame) == 0.0
    assert psnr(frame, frame) == float("inf")


@pytest.mark.parametrize("recipe_id", [6200, 6210])
def test_style_error_sees_a_different_style(recipe_id):
    a, b = make_recipe(recipe_id, 0), make_recipe(recipe_id + 1, 0)
    if recipe_style(a) == recipe_style(b):
        pytest.skip("same style by chance")
    assert style_error(a, render(b, b.steps[0].state), render(a, a.steps[0].state)) > 10


def test_style_error_is_the_mean_of_its_table_and_rim_parts():
    a, b = make_recipe(6200, 0), make_recipe(6201, 0)
    generated, reference = render(b, b.steps[0].state), render(a, a.steps[0].state)
    assert style_error(a, generated, reference) == pytest.approx(sum(style_parts(a, generated, reference)) / 2)


def test_drawn_vessel_shape_names_each_recipe_own_shape_on_its_later_frames():
    recipes = split("val")[:40]
    assert {recipe_style(r).shape for r in recipes} == set(SHAPES)
    for recipe in recipes:
        frames = render_recipe(recipe)
        rim_rgb = rim_colour(frames[0], recipe_style(recipe).shape)
        assert [drawn_vessel_shape(f, rim_rgb) for f in frames[1:]] == [recipe_style(recipe).shape] * (len(frames) - 1)


def test_style_by_position_is_zero_on_the_reference_and_the_shape_share_falls_with_other_recipes_frames():
    recipes = split("val")[:12]
    own = {r.recipe_id: list(render_recipe(r)[1:]) for r in recipes}
    rows = style_rows_by_position(recipes, own)
    assert len(rows[1]) == len(recipes)
    assert sum(len(r) for r in rows.values()) == sum(len(r.steps) - 1 for r in recipes)
    assert all(table == rim == 0 and kept for r in rows.values() for table, rim, kept in r)
    assert shape_kept_share(recipes, own) == 1.0
    # Each recipe given the frames of a later recipe drawn in another shape.
    others = split("val")[12:]
    swapped = {}
    for recipe in recipes:
        other = next(o for o in others if recipe_style(o).shape != recipe_style(recipe).shape and len(o.steps) >= len(recipe.steps))
        swapped[recipe.recipe_id] = list(render_recipe(other)[1 : len(recipe.steps)])
    assert shape_kept_share(recipes, swapped) < 0.5


def test_drawn_vessel_shape_sees_another_shape_in_the_same_colours():
    recipe = make_recipe(6200, 0)
    style = recipe_style(recipe)
    other = next(s for s in SHAPES if s != style.shape)
    frame = render(recipe, recipe.steps[0].state)
    # The other shape's rim painted over the frame in the rim's colour, the table restored outside it.
    redrawn = frame.copy()
    redrawn[vessel_masks(style.shape)[1]] = frame[0, 0]
    redrawn[vessel_masks(other)[1]] = frame[vessel_masks(style.shape)[1]].mean(0).astype(np.uint8)
    rim_rgb = rim_colour(frame, style.shape)
    assert drawn_vessel_shape(frame, rim_rgb) == style.shape
    assert drawn_vessel_shape(redrawn, rim_rgb) == other


def test_a_step_the_reconstruction_cannot_show_is_left_out_of_the_showable_rate():
    recipe = next(r for r in split("test") if any(probe_target(r, s) for s in r.steps[1:]))
    frames = render_recipe(recipe)
    i = next(i for i, s in enumerate(recipe.steps) if i and probe_target(recipe, s))
    # The previous frame as the "reconstruction": it lacks the step's new colour, so no generator is held to it.
    blind = probe_row(recipe, recipe.steps[i], frames[i], frames[i], frames[i - 1])
    sharp = probe_row(recipe, recipe.steps[i], frames[i - 1], frames[i], frames[i])
    assert blind["showable"] is False and sharp["showable"] is True and sharp["probe"] is False
    summary = summarise([blind, sharp, dict(sharp, probe=True)])
    assert summary["probed_steps"] == 3 and summary["showable_steps"] == 2
    assert summary["text_probe_pass_showable"] == 0.5


def test_probe_kind_names_how_the_step_is_drawn():
    new_pixels: dict[str, list[int]] = {}
    for recipe in split("train")[:300]:
        frames = render_recipe(recipe)
        for i, step in enumerate(recipe.steps[1:], start=1):
            target = probe_target(recipe, step)
            assert (probe_kind(step) is None) == (target is None), step.text
            if target is not None:
                rgb, region = target
                added = colour_count(frames[i], rgb, region) - colour_count(frames[i - 1], rgb, region)
                new_pixels.setdefault(probe_kind(step), []).append(added)
    assert set(new_pixels) == {"chop", "add whole", "add pieces", "sprinkle"}
    # Three discs of radius 4 cover more of the vessel than nine 3x3 pieces.
    assert np.mean(new_pixels["add whole"]) > 1.3 * np.mean(new_pixels["add pieces"])
