/** stepframe.json against schemas/stepframe-bundle.schema.json: the schema training/ checks too (python3-jsonschema). */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, test } from 'node:test';

import { BundleError } from '../../../src/pipeline/errors.js';
import { parseManifest } from '../../../src/pipeline/bundle/manifest.js';
import { FIXTURE_BUNDLES } from '../../helpers/paths.js';

const valid = () => JSON.parse(readFileSync(join(FIXTURE_BUNDLES, 'concatenation', 'stepframe.json'), 'utf8'));

describe('stepframe.json schema', () => {
  test('the fixture bundles\' manifests are valid and read as the engine needs them', () => {
    const m = parseManifest(valid(), 'stepframe.json');
    assert.equal(m.fuserKind, 'concatenation');
    assert.equal(m.defaults.numInferenceSteps, 50);
    assert.ok(m.components.unet?.sha256);
  });

  const refused: [string, (m: any) => void, RegExp][] = [
    ['a missing format_version', (m) => delete m.format_version, /stepframe\.json: format_version is required/],
    ['a negative scaling factor', (m) => (m.latent.scaling_factor = -1), /latent\.scaling_factor must be > 0, got -1/],
    ['an unknown component', (m) => (m.components.vae = m.components.unet), /components\.vae is not a known component/],
    ['an image-conditioned bundle without its fuser', (m) => delete m.components.fuser, /components\.fuser is required: a fuser other than baseline reads the previous image/],
    ['a first step that is not zeros', (m) => (m.conditioning.first_step.kind = 'noise'), /conditioning\.first_step\.kind must be equal to constant "zeros", got "noise"/],
    ['a tensor without a dtype', (m) => delete m.components.unet.inputs[0].dtype, /components\.unet\.inputs\.0\.dtype is required/],
    ['external data outside the model\'s folder', (m) => (m.components.unet.external_data = [{ path: '../x', sha256: 'a'.repeat(64) }]), /components\.unet\.external_data\.0\.path must match pattern/],
    ['a zero image guidance default', (m) => (m.defaults.image_guidance_scale = 0), /defaults\.image_guidance_scale must be > 0, got 0/],
  ];
  for (const [what, mutate, message] of refused) {
    test(`refused, naming the field: ${what}`, () => {
      const m = valid();
      mutate(m);
      assert.throws(() => parseManifest(m, 'stepframe.json'), (error: unknown) => error instanceof BundleError && message.test(error.message) ? true : assert.fail(String(error)));
    });
  }
});
