// Client tests: the official `openai` npm package against a real ferryd.
//
// Environment:
//   FERRYD        path to the ferryd binary (required)
//   FERRY_CONFIG  configuration to start from (default: <repo>/config/ferry.toml)
//
// Two daemons are started from copies of that configuration: one whose
// [providers.mock] pacing is switched off, which keeps the bulk of the tests
// fast, and one paced like the default configuration (50 tokens/s, 20 ms to
// the first token), so that streamed chunks really arrive over time.
//
// Run: FERRYD=build/host/ferryd node --test tests/clients/openai.test.mjs

import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { LATENCY_MS, MODEL, TOKENS_PER_SECOND, configWithPacing, startFerryd } from './support.mjs';

const here = dirname(fileURLToPath(import.meta.url));

let OpenAI;
try {
  // Resolve from this folder, whatever the working directory.
  createRequire(join(here, 'package.json')).resolve('openai');
  ({ default: OpenAI } = await import('openai'));
} catch (err) {
  throw new Error(
    `the 'openai' npm package is not installed in ${here}/node_modules ` +
      `(run: npm ci --prefix tests/clients): ${err.message}`,
  );
}

function client(daemon, options = {}) {
  return new OpenAI({ baseURL: daemon.baseURL, apiKey: 'sk-ferry-test', maxRetries: 0, timeout: 20_000, ...options });
}

// Collects a stream: its chunks and when each one arrived.
async function collect(stream) {
  const chunks = [];
  const times = [];
  for await (const chunk of stream) {
    chunks.push(chunk);
    times.push(performance.now());
  }
  return { chunks, times };
}

const contentOf = (chunks) => chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join('');

// --- the tests ---

let tmp;
let fast; // mock pacing off: quick answers
let paced; // mock paced like a real model

before(async () => {
  tmp = mkdtempSync(join(tmpdir(), 'ferry-clients-'));
  fast = await startFerryd(configWithPacing(tmp, 'ferry-unpaced.toml', 0, 0));
  paced = await startFerryd(configWithPacing(tmp, 'ferry-paced.toml', TOKENS_PER_SECOND, LATENCY_MS));
});

after(async () => {
  // Stop both before asserting, so that a failure leaves no daemon behind.
  const daemons = [
    ['unpaced', fast],
    ['paced', paced],
  ].filter(([, d]) => d);
  const results = await Promise.allSettled(daemons.map(([, d]) => d.stop()));
  if (tmp) rmSync(tmp, { recursive: true, force: true });
  daemons.forEach(([name, daemon], i) => {
    const r = results[i];
    if (r.status === 'rejected') throw r.reason;
    const { code, signal } = r.value;
    assert.ok(
      code === 0 && signal === null,
      `${name} ferryd did not shut down cleanly after SIGTERM (exit code ${code}, signal ${signal}); ` +
        `stderr:\n${daemon.stderr()}`,
    );
  });
});

describe('chat.completions.create', () => {
  test('returns the mock reply, usage and a request id', async () => {
    const message = 'Hello from the openai npm client';
    const { data, response } = await client(fast)
      .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: message }] })
      .withResponse();

    assert.equal(response.status, 200);
    assert.equal(data.object, 'chat.completion');
    assert.equal(data.model, MODEL);
    assert.equal(typeof data.id, 'string');
    assert.ok(data.id.length > 0);
    assert.equal(data.choices.length, 1);
    const [choice] = data.choices;
    assert.equal(choice.index, 0);
    assert.equal(choice.message.role, 'assistant');
    assert.equal(choice.message.content, `Ferry mock reply: ${message}`);
    assert.equal(choice.finish_reason, 'stop');

    const { usage } = data;
    assert.ok(usage, 'usage is present');
    for (const key of ['prompt_tokens', 'completion_tokens', 'total_tokens']) {
      assert.ok(Number.isInteger(usage[key]) && usage[key] > 0, `usage.${key} = ${usage[key]}`);
    }
    assert.equal(usage.total_tokens, usage.prompt_tokens + usage.completion_tokens);

    const requestId = response.headers.get('x-request-id');
    assert.ok(requestId, 'x-request-id header is present');
  });

  test('answers to the last user message', async () => {
    const completion = await client(fast).chat.completions.create({
      model: MODEL,
      messages: [
        { role: 'system', content: 'You are terse.' },
        { role: 'user', content: 'first question' },
        { role: 'assistant', content: 'first answer' },
        { role: 'user', content: 'second question' },
      ],
    });
    assert.equal(completion.choices[0].message.content, 'Ferry mock reply: second question');
  });

  test('echoes a client-chosen x-request-id', async () => {
    const id = `ferry-client-test-${process.pid}-${Date.now()}`;
    const response = await client(fast)
      .chat.completions.create(
        { model: MODEL, messages: [{ role: 'user', content: 'which id?' }] },
        { headers: { 'x-request-id': id } },
      )
      .asResponse();
    assert.equal(response.status, 200);
    assert.equal(response.headers.get('x-request-id'), id);
    const body = await response.json();
    assert.equal(body.choices[0].message.content, 'Ferry mock reply: which id?');
  });

  test('request ids set through defaultHeaders are echoed too', async () => {
    const id = `ferry-default-header-${process.pid}`;
    const { response } = await client(fast, { defaultHeaders: { 'x-request-id': id } })
      .chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'hi' }] })
      .withResponse();
    assert.equal(response.headers.get('x-request-id'), id);
  });

  test('distinct requests get distinct request ids', async () => {
    const c = client(fast);
    const ids = [];
    for (let i = 0; i < 3; i++) {
      const { response } = await c.chat.completions
        .create({ model: MODEL, messages: [{ role: 'user', content: `n${i}` }] })
        .withResponse();
      ids.push(response.headers.get('x-request-id'));
    }
    assert.equal(new Set(ids).size, ids.length, `ids: ${ids.join(', ')}`);
  });
});

describe('streaming', () => {
  const message = 'Stream this reply to me please';
  const request = { model: MODEL, messages: [{ role: 'user', content: message }] };

  test('deltas add up to the non-streamed content and end with stop', async () => {
    const c = client(fast);
    const whole = await c.chat.completions.create(request);
    const { chunks } = await collect(await c.chat.completions.create({ ...request, stream: true }));

    assert.ok(chunks.length > 1, `got ${chunks.length} chunk(s)`);
    for (const chunk of chunks) {
      assert.equal(chunk.object, 'chat.completion.chunk');
      assert.equal(chunk.model, MODEL);
    }
    assert.equal(new Set(chunks.map((c) => c.id)).size, 1, 'all chunks share one id');
    assert.equal(contentOf(chunks), whole.choices[0].message.content);
    assert.equal(contentOf(chunks), `Ferry mock reply: ${message}`);

    const withChoices = chunks.filter((c) => c.choices.length > 0);
    assert.equal(withChoices.at(-1).choices[0].finish_reason, 'stop');
    for (const chunk of withChoices.slice(0, -1)) {
      assert.equal(chunk.choices[0].finish_reason ?? null, null, 'only the last chunk finishes');
    }
    assert.equal(withChoices[0].choices[0].delta.role, 'assistant');

    assert.ok(
      chunks.every((c) => c.usage === undefined || c.usage === null),
      'without include_usage no chunk carries usage',
    );
  });

  test('include_usage adds a final usage chunk', async () => {
    const c = client(fast);
    const whole = await c.chat.completions.create(request);
    const { chunks } = await collect(
      await c.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } }),
    );

    const last = chunks.at(-1);
    assert.deepEqual(last.choices, [], 'the usage chunk has no choices');
    assert.ok(last.usage, 'the last chunk carries usage');
    assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
    assert.deepEqual(
      {
        prompt_tokens: last.usage.prompt_tokens,
        completion_tokens: last.usage.completion_tokens,
        total_tokens: last.usage.total_tokens,
      },
      {
        prompt_tokens: whole.usage.prompt_tokens,
        completion_tokens: whole.usage.completion_tokens,
        total_tokens: whole.usage.total_tokens,
      },
      'streamed usage matches the non-streamed usage',
    );
    for (const chunk of chunks.slice(0, -1)) {
      assert.ok(chunk.usage === undefined || chunk.usage === null, 'only the final chunk carries usage');
    }

    const withChoices = chunks.filter((c) => c.choices.length > 0);
    assert.equal(withChoices.at(-1).choices[0].finish_reason, 'stop');
    assert.equal(contentOf(chunks), `Ferry mock reply: ${message}`);
  });

  test('paced stream: chunks arrive over time, not all at once', async () => {
    const c = client(paced);
    const whole = await c.chat.completions.create(request);
    const start = performance.now();
    const { chunks, times } = await collect(
      await c.chat.completions.create({ ...request, stream: true, stream_options: { include_usage: true } }),
    );
    const contentTimes = times.filter((_, i) => (chunks[i].choices[0]?.delta?.content ?? '') !== '');

    assert.equal(contentOf(chunks), whole.choices[0].message.content);
    assert.ok(contentTimes.length >= 3, `got ${contentTimes.length} content chunk(s)`);
    // n content chunks at TOKENS_PER_SECOND take about (n-1)/TOKENS_PER_SECOND from
    // first to last; a buffered response would deliver them within a millisecond.
    const spread = contentTimes.at(-1) - contentTimes[0];
    const expected = ((contentTimes.length - 1) * 1000) / TOKENS_PER_SECOND;
    assert.ok(
      spread >= expected * 0.5,
      `content chunks spread over ${spread.toFixed(1)} ms; at ${TOKENS_PER_SECOND} tokens/s expected about ${expected} ms`,
    );
    const firstToken = contentTimes[0] - start;
    assert.ok(
      firstToken >= LATENCY_MS * 0.75,
      `first token after ${firstToken.toFixed(1)} ms; the provider waits ${LATENCY_MS} ms before it`,
    );
    assert.equal(chunks.at(-1).choices.length, 0);
    assert.ok(chunks.at(-1).usage);
    assert.equal(chunks.filter((c) => c.choices.length > 0).at(-1).choices[0].finish_reason, 'stop');
  });

  test('the stream helper (chat.completions.stream) gives the final completion', async () => {
    const runner = client(fast).chat.completions.stream({ ...request, stream_options: { include_usage: true } });
    let text = '';
    runner.on('content', (delta) => {
      text += delta;
    });
    const final = await runner.finalChatCompletion();
    assert.equal(text, `Ferry mock reply: ${message}`);
    assert.equal(final.choices[0].message.content, `Ferry mock reply: ${message}`);
    assert.equal(final.choices[0].finish_reason, 'stop');
  });
});

describe('errors surface as typed SDK errors', () => {
  test('unknown model -> NotFoundError (404) naming the model', async () => {
    const model = 'no-such-model-xyz';
    await assert.rejects(
      client(fast).chat.completions.create({ model, messages: [{ role: 'user', content: 'hi' }] }),
      (err) => {
        assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 404);
        assert.match(err.message, new RegExp(model));
        assert.ok(err.requestID || err.headers?.get?.('x-request-id'), 'the error carries the request id');
        return true;
      },
    );
  });

  test('unknown model while streaming -> NotFoundError (404)', async () => {
    const model = 'no-such-model-stream';
    await assert.rejects(
      (async () => {
        const stream = await client(fast).chat.completions.create({
          model,
          stream: true,
          messages: [{ role: 'user', content: 'hi' }],
        });
        for await (const _ of stream);
      })(),
      (err) => {
        assert.ok(err instanceof OpenAI.NotFoundError, `got ${err?.constructor?.name}: ${err?.message}`);
        assert.equal(err.status, 404);
        assert.match(err.message, new RegExp(model));
        return true;
      },
    );
  });

  test('empty messages -> BadRequestError (400)', async () => {
    await assert.rejects(client(fast).chat.completions.create({ model: MODEL, messages: [] }), (err) => {
      assert.ok(err instanceof OpenAI.BadRequestError, `got ${err?.constructor?.name}: ${err?.message}`);
      assert.equal(err.status, 400);
      assert.ok(err.message.length > 0);
      return true;
    });
  });
});

describe('embeddings.create', () => {
  const cosine = (a, b) => a.reduce((sum, x, i) => sum + x * b[i], 0);

  test('returns one vector per input, decoded from the default base64', async () => {
    const inputs = ['the capital of France', 'The capital of France?', 'how to bake sourdough bread'];
    const result = await client(fast).embeddings.create({ model: MODEL, input: inputs });
    assert.equal(result.object, 'list');
    assert.equal(result.data.length, 3);
    for (const [i, item] of result.data.entries()) {
      assert.equal(item.index, i);
      assert.equal(item.embedding.length, 64, 'the mock embeds in 64 dimensions');
    }
    assert.ok(result.usage.prompt_tokens > 0, 'usage is reported');
    const [a, b, c] = result.data.map((d) => Array.from(d.embedding));
    assert.ok(cosine(a, b) > 0.99, `same words, other case: ${cosine(a, b)}`);
    assert.ok(cosine(a, c) < 0.5, `unrelated text: ${cosine(a, c)}`);
  });

  test('float encoding is passed through as asked', async () => {
    const result = await client(fast).embeddings.create({
      model: MODEL,
      input: 'hello',
      encoding_format: 'float',
      dimensions: 8,
    });
    assert.equal(result.data[0].embedding.length, 8);
    assert.equal(typeof result.data[0].embedding[0], 'number');
  });
});

describe('models.list', () => {
  test('lists ferry-mock as a model object', async () => {
    const page = await client(fast).models.list();
    const models = [];
    for await (const model of page) models.push(model);

    assert.ok(models.length > 0, 'at least one model');
    assert.ok(
      models.some((m) => m.id === MODEL),
      `${MODEL} is listed; got ${models.map((m) => m.id).join(', ')}`,
    );
    for (const model of models) {
      assert.equal(model.object, 'model', `object of ${model.id}`);
      assert.equal(typeof model.id, 'string');
    }
  });

  test('ferryd keeps serving after listing models', async () => {
    const c = client(fast);
    await c.models.list();
    await new Promise((r) => setTimeout(r, 100));
    const completion = await c.chat.completions.create({
      model: MODEL,
      messages: [{ role: 'user', content: 'still there?' }],
    });
    assert.equal(completion.choices[0].message.content, 'Ferry mock reply: still there?');
  });
});
