import type { ComponentName } from './manifest.js';
import type { ModelContract } from './onnxModel.js';

// float16 is accepted wherever float32 is: executors convert at the model boundary.
const f32 = ['float32', 'float16'] as const;
// Hub ONNX revisions (diffusers' conversion script) take int32 token ids.
const ids = ['int64', 'int32'] as const;

/** The fuser's inputs, in the order the paper lists them; a fuser may ignore (and so lack) some of them. */
export const FUSER_INPUTS = ['text_hidden_states', 'text_pooled', 'image_hidden_states', 'image_pooled'] as const;
/** What a fuser that also sees the sequence's first frame takes besides (training/stepframe_train/models/sequence_fusers.py). */
export const FIRST_FRAME_INPUTS = ['first_image_hidden_states', 'first_image_pooled'] as const;

/** What the engine feeds and reads, per component: Optimum's SD 1.x names plus the fuser's. */
export const CONTRACTS: Record<ComponentName, ModelContract> = {
  text_encoder: {
    inputs: [{ name: 'input_ids', dtypes: ids, ranks: [2] }],
    outputs: [
      { name: 'last_hidden_state', dtypes: f32, ranks: [3] },
      { name: 'pooler_output', dtypes: f32, ranks: [2], optional: true },
    ],
  },
  image_encoder: {
    inputs: [{ name: 'pixel_values', dtypes: f32, ranks: [4] }],
    outputs: [
      { name: 'last_hidden_state', dtypes: f32, ranks: [3] },
      // CLIPVisionModel exports pooler_output; CLIPVisionModelWithProjection exports image_embeds
      // (the projected pooled embedding) instead. One of the two is required (checkAgreement).
      { name: 'pooler_output', dtypes: f32, ranks: [2], optional: true },
      { name: 'image_embeds', dtypes: f32, ranks: [2], optional: true },
    ],
  },
  fuser: {
    inputs: [
      { name: 'text_hidden_states', dtypes: f32, ranks: [3], optional: true },
      { name: 'text_pooled', dtypes: f32, ranks: [2], optional: true },
      { name: 'image_hidden_states', dtypes: f32, ranks: [3], optional: true },
      { name: 'image_pooled', dtypes: f32, ranks: [2], optional: true },
      { name: 'first_image_hidden_states', dtypes: f32, ranks: [3], optional: true },
      { name: 'first_image_pooled', dtypes: f32, ranks: [2], optional: true },
    ],
    outputs: [{ name: 'encoder_hidden_states', dtypes: f32, ranks: [3] }],
  },
  unet: {
    inputs: [
      { name: 'sample', dtypes: f32, ranks: [4] },
      { name: 'timestep', dtypes: ['int64', 'int32', 'float32', 'float16'], ranks: [1, 0] },
      { name: 'encoder_hidden_states', dtypes: f32, ranks: [3] },
      // LCM UNets: the guidance-scale embedding (guidanceEmbedding.ts).
      { name: 'timestep_cond', dtypes: f32, ranks: [2], optional: true },
    ],
    outputs: [{ name: 'out_sample', dtypes: f32, ranks: [4] }],
  },
  vae_decoder: {
    inputs: [{ name: 'latent_sample', dtypes: f32, ranks: [4] }],
    outputs: [{ name: 'sample', dtypes: f32, ranks: [4] }],
  },
  vae_encoder: {
    inputs: [{ name: 'sample', dtypes: f32, ranks: [4] }],
    outputs: [],
  },
};
