import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { ConfigError, OPTIONS, helpText, parseConfig } from '../../src/server/config.js';

describe('config', () => {
  test('defaults: 0.0.0.0:50051, models/, metrics on 9464', () => {
    const config = parseConfig([], {});
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.port, 50051);
    assert.equal(config.modelDir, 'models');
    assert.equal(config.metricsPort, 9464);
    assert.deepEqual(config.executionProviders, ['cuda', 'cpu']);
  });

  test('flags override the environment, which overrides defaults', () => {
    assert.equal(parseConfig([], { STEPFRAME_PORT: '6000' }).port, 6000);
    assert.equal(parseConfig(['--port', '7000'], { STEPFRAME_PORT: '6000' }).port, 7000);
    assert.equal(parseConfig(['--port=7001'], {}).port, 7001);
    assert.deepEqual(parseConfig(['--execution-providers', 'cpu'], {}).executionProviders, ['cpu']);
  });

  const bad: [string[], Record<string, string>, RegExp][] = [
    [['--port', 'abc'], {}, /--port .*must be an integer, got "abc"/],
    [[], { STEPFRAME_MAX_BATCH: '2' }, /STEPFRAME_MAX_BATCH .*must be in \[3, 1024\], got 2/],
    [['--bogus', '1'], {}, /unknown flag --bogus/],
    [['--port'], {}, /--port needs a value/],
    [['--port', '--host', '0.0.0.0'], {}, /--port needs a value \(to pass one that starts with a dash, write --port=VALUE\)/],
    [['models'], {}, /unexpected argument "models"; flags look like --port 50051/],
    [['--port=70000'], {}, /--port .*must be in \[0, 65535\], got 70000/],
    [['--tls-cert', 'a.pem'], {}, /--tls-cert and --tls-key must be given together/],
    [['--log-level', 'loud'], {}, /--log-level .*must be one of debug, info, warn, error/],
  ];
  for (const [argv, env, message] of bad) {
    test(`bad input fails naming the flag or variable: ${[...argv, ...Object.keys(env)].join(' ')}`, () => {
      assert.throws(() => parseConfig(argv, env), (error: unknown) => error instanceof ConfigError && message.test(error.message));
    });
  }

  test('--help lists every flag with its variable', () => {
    const help = helpText();
    for (const option of OPTIONS) {
      assert.ok(help.includes(`--${option.flag}`), option.flag);
      assert.ok(help.includes(option.env), option.env);
    }
  });
});
