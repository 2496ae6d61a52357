import { writeFileSync } from 'node:fs';
import { ExecutorPool } from './dist/src/pipeline/execution/executorPool.js';
writeFileSync('/tmp/garbage.onnx', 'this is not an ONNX graph');
const mk = (p) => new ExecutorPool({ executionProviders: p, intraOpNumThreads: 1, interOpNumThreads: 1, mode: 'workers', executors: 2, cudaDeviceIds: [], log: () => {} });
const a = mk([process.argv[2] ?? 'cuda', 'cpu']);
await a.load('/tmp/garbage.onnx').catch((e) => console.log('load failed:', e.message.slice(0, 100)));
console.log('disposing a'); await a.dispose(); console.log('disposed a');
const b = mk(['cpu']);
await b.load('test/fixtures/bundles/shared/text_encoder/model.onnx'); console.log('b loaded'); await b.dispose(); console.log('done');
