import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConditioningFrame, GenerateSequenceRequest, SamplingPreset } from '../../src/generated/stepframe/v1/sequence_service.js';
import type { ModelInfo } from '../../src/pipeline/engine.js';
import { parseGenerateRequest } from '../../src/server/validateRequest.js';

const MODEL: ModelInfo = {
  name: 'concatenation', fuserKind: 'concatenation', width: 64, height: 64, imageGuidance: false,
  defaults: { scheduler: 'ddpm', numInferenceSteps: 50, guidanceScale: 4, imageGuidanceScale: 1 }, schedulers: ['ddpm', 'dpmpp_2m'], provider: 'cpu',
  isDefault: true, pooledImageOutput: 'pooler_output', timestepInput: 'per_row', imagePreprocess: null, state: 'loaded',
};

const parse = (fields: Partial<GenerateSequenceRequest>) => parseGenerateRequest(GenerateSequenceRequest.fromPartial({ steps: ['stir'], ...fields }), { maxSteps: 16, maxStepChars: 500 }, () => MODEL);

describe('parseGenerateRequest: warm start, conditioning frame and presets', () => {
  test('unset: every frame from noise, conditioned on the one before (the paper)', async () => {
    const request = await parse({});
    assert.equal(request.frameStrength, 1);
    assert.equal(request.firstFrameWeight, 0);
  });

  test('the CONSISTENT presets: DDPM 50 at first-frame weight 0.75, DPM++ 2M 6 on the first frame; fields in the request win', async () => {
    const preset = await parse({ preset: SamplingPreset.SAMPLING_PRESET_CONSISTENT });
    assert.deepEqual([preset.scheduler, preset.numInferenceSteps, preset.firstFrameWeight, preset.frameStrength], ['ddpm', 50, 0.75, 1]);
    const fast = await parse({ preset: SamplingPreset.SAMPLING_PRESET_CONSISTENT_FAST });
    assert.deepEqual([fast.scheduler, fast.numInferenceSteps, fast.firstFrameWeight], ['dpmpp_2m', 6, 1]);
    const overridden = await parse({ preset: SamplingPreset.SAMPLING_PRESET_CONSISTENT, conditionOn: ConditioningFrame.CONDITIONING_FRAME_PREVIOUS, frameStrength: 0.5 });
    assert.deepEqual([overridden.firstFrameWeight, overridden.frameStrength], [0, 0.5]);
    const weighted = await parse({ preset: SamplingPreset.SAMPLING_PRESET_CONSISTENT, conditionOn: ConditioningFrame.CONDITIONING_FRAME_FIRST, firstFrameWeight: 0.25 });
    assert.equal(weighted.firstFrameWeight, 0.25, 'first_frame_weight wins over condition_on and the preset');
  });

  test('condition_on FIRST and FIRST_AND_PREVIOUS and a frame strength pass through', async () => {
    assert.equal((await parse({ conditionOn: ConditioningFrame.CONDITIONING_FRAME_FIRST_AND_PREVIOUS })).firstFrameWeight, 0.5);
    const request = await parse({ conditionOn: ConditioningFrame.CONDITIONING_FRAME_FIRST, frameStrength: 0.7 });
    assert.equal(request.firstFrameWeight, 1);
    assert.ok(Math.abs(request.frameStrength - 0.7) < 1e-6);
  });
});
