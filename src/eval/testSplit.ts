import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

import { decodeImage, type RgbImage } from '../pipeline/rgbImage.js';

/** One recipe of an evaluation split: its step texts and reference images, in order. */
export interface EvalRecipe {
  id: string;
  steps: { text: string; image: string }[];
}

export interface EvalSplit {
  dir: string;
  recipes: EvalRecipe[];
  /** The recipe world's seed, when the split is the world's (training/world_test): its own scores apply. */
  worldSeed: number | null;
}

/**
 * Reads a split in the layout `python -m stepframe_train.world.export_test_split` writes: a
 * recipes.json of `{recipes: [{recipe_id, steps: [{text, image}]}]}` beside the reference images.
 * A real dataset converted to this layout needs nothing else; the world's own fields (`seed`,
 * `style`, each step's `action`) only switch on the world's scores.
 */
export async function loadSplit(dir: string, limit?: number): Promise<EvalSplit> {
  const file = join(dir, 'recipes.json');
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(file, 'utf8'));
  } catch (error) {
    throw new Error(`${file}: ${(error as Error).message}`);
  }
  const entries = (raw as { recipes?: unknown }).recipes;
  if (!Array.isArray(entries) || entries.length === 0) throw new Error(`${file}: expected a non-empty "recipes" array`);
  const recipes = entries.map((entry, i): EvalRecipe => {
    const e = entry as { recipe_id?: unknown; steps?: unknown };
    if (!Array.isArray(e.steps) || e.steps.length < 2) throw new Error(`${file}: recipes[${i}] needs at least 2 steps (the first is given, the rest are generated)`);
    const steps = e.steps.map((s, j) => {
      const step = s as { text?: unknown; image?: unknown };
      if (typeof step.text !== 'string' || step.text.trim() === '') throw new Error(`${file}: recipes[${i}].steps[${j}].text must be a non-empty string`);
      if (typeof step.image !== 'string' || step.image === '') throw new Error(`${file}: recipes[${i}].steps[${j}].image must name the reference image`);
      return { text: step.text, image: step.image };
    });
    return { id: String(e.recipe_id ?? i), steps };
  });
  const seed = (raw as { seed?: unknown }).seed;
  const isWorld = typeof seed === 'number' && entries.every((e) => typeof (e as { style?: unknown }).style === 'object');
  return { dir, recipes: limit ? recipes.slice(0, limit) : recipes, worldSeed: isWorld ? seed : null };
}

/** A reference image of the split, decoded to RGB. */
export async function referenceImage(split: EvalSplit, name: string): Promise<RgbImage> {
  const path = join(split.dir, name);
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new Error(`${path}: ${(error as Error).message}`);
  }
  return decodeImage(bytes, path);
}
