// The official openai npm client against `tinyllm serve` on the demo model: completions streamed and not
// (greedy text equal to the PyTorch oracle's fixture), log-probs, seeds, errors and the API key.
// Usage: node openai.test.mjs TINYLLM_BINARY MODEL_DIR FIXTURES_DIR   (exit 77: skipped)
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';

const [tool, modelDir, fixtures] = process.argv.slice(2);
let OpenAI;
try {
  OpenAI = (await import('openai')).default;
} catch {
  console.log('SKIP: the openai npm package is not installed (npm ci --prefix tests/server)');
  process.exit(77);
}

const apiKey = 'test-key-' + Math.random().toString(36).slice(2);
const server = spawn(tool, ['serve', '-m', modelDir, '--port', '0', '-t', '1', '--parallel', '4', '--max-tokens', '100'], {
  env: { ...process.env, TINYLLM_API_KEY: apiKey },
  stdio: ['ignore', 'ignore', 'pipe'],
});
let log = '';
const exited = new Promise((resolve) => server.on('exit', (code, signal) => resolve({ code, signal })));
const baseURL = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error('the server did not start:\n' + log)), 30000);
  server.stderr.on('data', (d) => {
    log += d;
    const m = log.match(/at (http:\/\/127\.0\.0\.1:\d+\/v1)/);
    if (m) {
      clearTimeout(timer);
      resolve(m[1]);
    }
  });
  server.on('exit', () => reject(new Error('the server exited:\n' + log)));
});
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0 });
const model = 'tiny-sotu';
const prompt = 'The state of the Union';
// The demo model's greedy continuation (35 tokens), as PyTorch computes it.
const expected = readFileSync(`${fixtures}/demo_greedy.txt`, 'utf8').trimEnd().slice(prompt.length);

after(async () => {
  server.kill('SIGTERM');
  const { code, signal } = await exited;
  assert.equal(signal, null);
  assert.equal(code, 0, 'tinyllm serve exits 0 after SIGTERM');
});

test('models.list names the served model', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m.id);
  assert.deepEqual(models, [model]);
});

test('a greedy completion is the oracle text, with usage', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 35, temperature: 0 });
  assert.equal(r.object, 'text_completion');
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].text, expected);
  assert.equal(r.choices[0].finish_reason, 'length');
  assert.deepEqual(r.usage, { prompt_tokens: 5, completion_tokens: 35, total_tokens: 40 });
});

test('streaming gives the same text in pieces, then usage', async () => {
  const stream = await client.completions.create({
    model, prompt, max_tokens: 35, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = '';
  let chunks = 0;
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    chunks++;
    if (chunk.usage) usage = chunk.usage;
    for (const c of chunk.choices) {
      text += c.text;
      if (c.finish_reason) finish = c.finish_reason;
    }
  }
  assert.equal(text, expected);
  assert.ok(chunks > 10, 'token by token');
  assert.equal(finish, 'length');
  assert.equal(usage.completion_tokens, 35);
});

test('logprobs in the legacy shape, streamed and not', async () => {
  const r = await client.completions.create({ model, prompt, max_tokens: 10, temperature: 0, logprobs: 3 });
  const lp = r.choices[0].logprobs;
  assert.equal(lp.tokens.length, 10);
  assert.equal(lp.tokens.join(''), r.choices[0].text);
  for (let i = 0; i < 10; i++) {
    assert.ok(lp.token_logprobs[i] <= 0);
    const alternatives = Object.entries(lp.top_logprobs[i]);
    assert.ok(alternatives.length >= 3 && alternatives.length <= 4);
    // greedy: the chosen token is the most likely alternative
    const best = alternatives.reduce((a, b) => (b[1] > a[1] ? b : a));
    assert.equal(best[0], lp.tokens[i]);
    assert.equal(lp.top_logprobs[i][lp.tokens[i]], lp.token_logprobs[i]);
    if (i > 0) assert.ok(lp.text_offset[i] > lp.text_offset[i - 1]);
  }
  assert.equal(lp.text_offset[0], prompt.length);
  const stream = await client.completions.create({ model, prompt, max_tokens: 10, temperature: 0, logprobs: 3, stream: true });
  const tokens = [];
  const logprobs = [];
  for await (const chunk of stream)
    for (const c of chunk.choices)
      if (c.logprobs) {
        tokens.push(...c.logprobs.tokens);
        logprobs.push(...c.logprobs.token_logprobs);
      }
  assert.deepEqual(tokens, lp.tokens);
  assert.deepEqual(logprobs, lp.token_logprobs);
  // echo + max_tokens 0: the prompt's log-probs, the first null
  const e = await client.completions.create({ model, prompt, max_tokens: 0, echo: true, logprobs: 1 });
  assert.equal(e.choices[0].text, prompt);
  assert.equal(e.choices[0].logprobs.token_logprobs[0], null);
  assert.equal(e.choices[0].logprobs.tokens.length, 5);
});

test('a seed repeats sampled completions; n gives several', async () => {
  const ask = (seed) => client.completions.create({ model, prompt, max_tokens: 12, temperature: 0.9, n: 2, seed });
  const [a, b, c] = await Promise.all([ask(7), ask(7), ask(8)]);
  assert.equal(a.choices.length, 2);
  assert.deepEqual(a.choices.map((x) => x.text), b.choices.map((x) => x.text));
  assert.notDeepEqual(a.choices.map((x) => x.text), c.choices.map((x) => x.text));
});

test('errors arrive as the client\'s typed errors', async () => {
  await assert.rejects(client.completions.create({ model, prompt, frobnicate: 1 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.status, 400);
    assert.match(e.message, /Unrecognized request argument supplied: frobnicate/);
    return true;
  });
  await assert.rejects(client.completions.create({ model, prompt, max_tokens: 101 }), (e) => {
    assert.ok(e instanceof OpenAI.BadRequestError);
    assert.equal(e.param, 'max_tokens');
    assert.equal(e.code, 'integer_above_max_value');
    return true;
  });
  await assert.rejects(client.completions.create({ model: 'gpt-3.5-turbo-instruct', prompt }), OpenAI.NotFoundError);
  await assert.rejects(client.chat.completions.create({ model, messages: [{ role: 'user', content: 'Hi' }] }),
    (e) => e instanceof OpenAI.NotFoundError && /not a chat model/.test(e.message));
});

test('embeddings are the PyTorch oracle\'s, in float and base64', async () => {
  // tests/reference/make_embedding_fixtures.py: the demo model's pooled vectors, float64 PyTorch.
  const dir = `${fixtures}/embeddings/tiny-sotu`;
  const doc = JSON.parse(readFileSync(`${dir}/embeddings.json`, 'utf8'));
  const blob = readFileSync(`${dir}/embeddings.f32`);
  const oracle = new Float32Array(blob.buffer, blob.byteOffset, blob.byteLength / 4);
  for (const [pooling, extra] of [['mean', {}], ['weighted_mean', { pooling: 'weighted_mean' }]]) {
    const r = await client.embeddings.create({ model, input: doc.texts, encoding_format: 'float', ...extra });
    assert.equal(r.object, 'list');
    assert.equal(r.data.length, doc.texts.length);
    const tokens = doc.inputs.reduce((n, ids) => n + ids.length, 0);
    assert.deepEqual(r.usage, { prompt_tokens: tokens, total_tokens: tokens });
    doc.inputs.forEach((ids, i) => {
      const c = doc.cases.find((k) => k.pooling === pooling && k.layer === 4 && k.normalize &&
                                      JSON.stringify(k.ids) === JSON.stringify(ids));
      const want = oracle.subarray(c.offset, c.offset + c.count);
      const got = r.data[i].embedding;
      assert.equal(r.data[i].index, i);
      assert.equal(got.length, want.length);
      const scale = Math.max(...want.map(Math.abs));
      got.forEach((v, k) => assert.ok(Math.abs(v - want[k]) <= 1e-5 * scale, `${pooling} input ${i} dim ${k}: ${v} vs ${want[k]}`));
    });
  }
  // The client asks for base64 by default and decodes it: the same floats as the float format.
  const plain = await client.embeddings.create({ model, input: 'whale', encoding_format: 'float' });
  const packed = await client.embeddings.create({ model, input: 'whale' });
  assert.deepEqual(Array.from(packed.data[0].embedding), plain.data[0].embedding.map(Math.fround));
  await assert.rejects(client.embeddings.create({ model, input: 'whale', dimensions: 64 }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'dimensions');
  await assert.rejects(client.embeddings.create({ model, input: [] }),
    (e) => e instanceof OpenAI.BadRequestError && e.param === 'input');
});

test('the API key is required', async () => {
  const wrong = new OpenAI({ baseURL, apiKey: apiKey + 'x', maxRetries: 0 });
  await assert.rejects(wrong.completions.create({ model, prompt, max_tokens: 1 }), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError);
    assert.equal(e.status, 401);
    return true;
  });
  await assert.rejects(wrong.models.list(), OpenAI.AuthenticationError);
});
