// Client tests: Anthropic's official SDK (@anthropic-ai/sdk) and the Vercel AI
// SDK's Anthropic provider (@ai-sdk/anthropic) against a real ferryd, through
// its anthropic frontend. Behind it: the in-process mock, and the project's
// mock upstream reached once through the openai adapter (a translation both
// ways) and once through the anthropic adapter.
//
// Run: FERRYD=build/host/ferryd FERRY_MOCK_UPSTREAM=build/tests/mock_upstream/ferry-mock-upstream \
//        node --test tests/clients/anthropic.test.mjs

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { FERRY_CONFIG, MODEL, configWithPacing, startFerryd, startMockUpstream } from './support.mjs';

let Anthropic, createAnthropic, streamText, generateText;
try {
  ({ default: Anthropic } = await import('@anthropic-ai/sdk'));
  ({ createAnthropic } = await import('@ai-sdk/anthropic'));
  ({ streamText, generateText } = await import('ai'));
} catch (err) {
  throw new Error(`the client packages are not installed (run: npm ci --prefix tests/clients): ${err.message}`);
}

let tmp;
let daemon;
let upstream;

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'ferry-anthropic-'));
  upstream = await startMockUpstream();
  // The default configuration (unpaced), plus two pipelines in front of the mock upstream.
  const base = readFileSync(configWithPacing(tmp, 'base.toml', 0, 0), 'utf8');
  const config = join(tmp, 'ferry.toml');
  writeFileSync(
    config,
    base +
      `
[providers.translated]
plugin = "openai"
base_url = "http://${upstream.addr}/v1"

[providers.native]
plugin = "anthropic"
base_url = "http://${upstream.addr}"
api_key_env = "FERRY_TEST_ANTHROPIC_KEY"

[pipelines.translated]
models = ["via-openai"]
providers = ["translated"]

[pipelines.native]
models = ["via-anthropic"]
providers = ["native"]
`,
  );
  process.env.FERRY_TEST_ANTHROPIC_KEY = 'sk-ant-upstream-test'; // ferryd inherits it
  daemon = await startFerryd(config);
});

after(async () => {
  const result = daemon ? await daemon.stop() : { code: 0, signal: null };
  upstream?.stop();
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  assert.ok(result.code === 0 && result.signal === null, `ferryd did not exit cleanly: ${daemon?.stderr()}`);
});

const client = () =>
  new Anthropic({ baseURL: `http://${daemon.addr}`, apiKey: 'sk-ant-ferry-test', maxRetries: 0, timeout: 20_000 });
const textOf = (message) =>
  message.content
    .filter((b) => b.type === 'text')
    .map((b) => b.text)
    .join('');

describe('@anthropic-ai/sdk', () => {
  test('messages.create answers in Anthropic shape with usage', async () => {
    const { data: message, response } = await client()
      .messages.create({
        model: MODEL,
        max_tokens: 64,
        system: 'You are terse.',
        messages: [{ role: 'user', content: 'tell me about ferries' }],
      })
      .withResponse();
    assert.equal(message.type, 'message');
    assert.equal(message.role, 'assistant');
    assert.match(message.id, /^msg_/);
    assert.equal(textOf(message), 'Ferry mock reply: tell me about ferries');
    assert.equal(message.stop_reason, 'end_turn');
    assert.ok(message.usage.input_tokens > 0 && message.usage.output_tokens > 0, JSON.stringify(message.usage));
    assert.ok(response.headers.get('request-id'), 'request-id header');
  });

  test('messages.stream text equals the non-streamed text, with the event sequence Anthropic sends', async () => {
    const params = { model: MODEL, max_tokens: 64, messages: [{ role: 'user', content: 'the same words both ways' }] };
    const whole = await client().messages.create(params);
    const stream = client().messages.stream(params);
    const types = [];
    let streamed = '';
    stream.on('streamEvent', (event) => types.push(event.type));
    stream.on('text', (delta) => {
      streamed += delta;
    });
    const final = await stream.finalMessage();
    assert.equal(streamed, textOf(whole));
    assert.equal(textOf(final), textOf(whole));
    assert.equal(types[0], 'message_start');
    assert.equal(types.at(-1), 'message_stop');
    assert.ok(types.includes('content_block_start') && types.includes('content_block_delta'), types.join());
    assert.equal(final.stop_reason, 'end_turn');
    assert.ok(final.usage.output_tokens > 0, JSON.stringify(final.usage));
  });

  test('max_tokens cuts the answer and says so', async () => {
    const message = await client().messages.create({
      model: MODEL,
      max_tokens: 2,
      messages: [{ role: 'user', content: 'one two three four five' }],
    });
    assert.equal(message.stop_reason, 'max_tokens');
  });

  for (const model of ['via-openai', 'via-anthropic']) {
    test(`a tool round trip through ${model}`, async () => {
      const tools = [
        {
          name: 'lookup',
          description: 'Looks a word up',
          input_schema: { type: 'object', properties: { query: { type: 'string' } }, required: ['query'] },
        },
      ];
      const first = await client().messages.create({
        model,
        max_tokens: 64,
        tools,
        messages: [{ role: 'user', content: 'ferry timetable' }],
      });
      assert.equal(first.stop_reason, 'tool_use', JSON.stringify(first));
      const use = first.content.find((b) => b.type === 'tool_use');
      assert.ok(use, JSON.stringify(first.content));
      assert.equal(use.name, 'lookup');
      assert.deepEqual(use.input, { query: 'ferry timetable' });

      // The same call streamed: the input arrives as input_json_delta fragments.
      const streamed = await client()
        .messages.stream({ model, max_tokens: 64, tools, messages: [{ role: 'user', content: 'ferry timetable' }] })
        .finalMessage();
      const streamedUse = streamed.content.find((b) => b.type === 'tool_use');
      assert.deepEqual(streamedUse?.input, { query: 'ferry timetable' }, JSON.stringify(streamed.content));
      assert.equal(streamed.stop_reason, 'tool_use');

      const second = await client().messages.create({
        model,
        max_tokens: 64,
        tools,
        messages: [
          { role: 'user', content: 'ferry timetable' },
          { role: 'assistant', content: first.content },
          { role: 'user', content: [{ type: 'tool_result', tool_use_id: use.id, content: 'departs at noon' }] },
        ],
      });
      assert.equal(second.stop_reason, 'end_turn');
      assert.equal(textOf(second), 'mock reply: departs at noon');
    });
  }

  test('countTokens gives an estimate and says it is one', async () => {
    const { data, response } = await client()
      .messages.countTokens({ model: MODEL, messages: [{ role: 'user', content: 'how many tokens is this' }] })
      .withResponse();
    assert.ok(Number.isInteger(data.input_tokens) && data.input_tokens >= 5, JSON.stringify(data));
    assert.equal(response.headers.get('x-ferry-token-count'), 'estimate');
  });

  test('models.list lists the served models in Anthropic shape', async () => {
    const ids = [];
    for await (const model of client().models.list()) {
      assert.equal(model.type, 'model');
      ids.push(model.id);
    }
    assert.ok(ids.includes(MODEL) && ids.includes('via-anthropic'), ids.join());
  });

  test('an unknown model is a NotFoundError with Anthropic error type', async () => {
    await assert.rejects(
      client().messages.create({ model: 'no-such-model', max_tokens: 8, messages: [{ role: 'user', content: 'x' }] }),
      (err) => {
        assert.equal(err.status, 404);
        assert.equal(err.error?.error?.type, 'not_found_error', JSON.stringify(err.error));
        assert.ok(err.requestID, 'the request id reaches the error');
        return true;
      },
    );
  });

  test('a malformed request is a BadRequestError naming the field', async () => {
    await assert.rejects(
      client().messages.create({ model: MODEL, max_tokens: 8, messages: [{ role: 'robot', content: 'x' }] }),
      (err) => {
        assert.equal(err.status, 400);
        assert.equal(err.error?.error?.type, 'invalid_request_error');
        assert.match(err.error?.error?.message, /messages\.0\.role/);
        return true;
      },
    );
  });
});

describe('@ai-sdk/anthropic (Vercel AI SDK)', () => {
  const provider = () => createAnthropic({ baseURL: `http://${daemon.addr}/v1`, apiKey: 'sk-ant-ferry-test' });

  test('streamText streams the same text generateText gets', async () => {
    const prompt = 'ferries cross the bay';
    const whole = await generateText({ model: provider()(MODEL), prompt, maxOutputTokens: 256, maxRetries: 0 });
    const result = streamText({ model: provider()(MODEL), prompt, maxOutputTokens: 256, maxRetries: 0 });
    let streamed = '';
    for await (const delta of result.textStream) streamed += delta;
    assert.equal(streamed, 'Ferry mock reply: ferries cross the bay');
    assert.equal(streamed, whole.text);
    const usage = await result.usage;
    assert.ok(usage.outputTokens > 0, JSON.stringify(usage));
    assert.equal(await result.finishReason, 'stop');
  });
});
