"""A tiny deterministic recipe world: step texts, 64x64 step images, and a per-recipe style the text never mentions."""
