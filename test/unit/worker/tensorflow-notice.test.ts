// The heavy child's console: TensorFlow's native start-up notices go to the worker log, tempered's lines stay.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { TENSORFLOW_NOTICE } from '../../../worker/main';

test('TensorFlow 2.21 start-up notices are recognised; tempered and SDK lines are not', () => {
  for (const line of [
    'WARNING: All log messages before absl::InitializeLog() is called are written to STDERR',
    'I0000 00:00:1796048674.045351   13811 port.cc:153] oneDNN custom operations are on.',
    'I0000 00:00:1796048674.101479   13811 cpu_feature_guard.cc:227] This TensorFlow binary is optimized',
    'To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow',
  ])
    assert.match(line, TENSORFLOW_NOTICE);
  for (const line of [
    'tempered: tfjs backend tensorflow (2 threads), first that starts of tensorflow-gpu, tensorflow',
    'worker: polling tempered-heavy on 127.0.0.1:17233 (namespace default)',
    'E0000 00:00:1796048674.045351   13811 cuda_driver.cc:10] failed call to cuInit',
  ])
    assert.doesNotMatch(line, TENSORFLOW_NOTICE);
});
