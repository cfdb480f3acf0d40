// Drives a running `slm serve` with the official openai and ollama npm
// clients, used exactly as applications use them. server/clients_test.go
// starts the server and runs this script with:
//   SLM_URL   base URL, e.g. http://127.0.0.1:40123
//   SLM_KEY   the server's API key
//   SLM_MODEL a model the server has (with a context of 512 tokens)
// Exit status 0 means every check passed; failures are printed one a line.
import assert from "node:assert/strict";
import OpenAI from "openai";
import { Ollama } from "ollama";

const base = process.env.SLM_URL;
const key = process.env.SLM_KEY;
const model = process.env.SLM_MODEL;
if (!base || !key || !model) {
  console.error("set SLM_URL, SLM_KEY and SLM_MODEL");
  process.exit(2);
}

let failures = 0;
async function check(name, fn) {
  try {
    await fn();
    console.log(`ok   ${name}`);
  } catch (err) {
    failures++;
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
  }
}

const openai = new OpenAI({ baseURL: `${base}/v1`, apiKey: key, maxRetries: 0 });
const ollama = new Ollama({ host: base, headers: { Authorization: `Bearer ${key}` } });
const messages = [
  { role: "system", content: "You are terse." },
  { role: "user", content: "Say hello." },
];

// ---- openai ----

await check("openai: models.list", async () => {
  const ids = [];
  for await (const m of openai.models.list()) ids.push(m.id);
  assert.ok(ids.includes(model), `models ${ids}`);
});

await check("openai: models.retrieve", async () => {
  const m = await openai.models.retrieve(model);
  assert.equal(m.id, model);
  assert.equal(m.object, "model");
});

let chatText;
await check("openai: chat.completions.create", async () => {
  const r = await openai.chat.completions.create({ model, messages, max_tokens: 12, temperature: 0 });
  assert.equal(r.object, "chat.completion");
  assert.equal(r.choices.length, 1);
  assert.equal(r.choices[0].message.role, "assistant");
  assert.equal(typeof r.choices[0].message.content, "string");
  assert.ok(["stop", "length"].includes(r.choices[0].finish_reason));
  assert.equal(r.usage.total_tokens, r.usage.prompt_tokens + r.usage.completion_tokens);
  chatText = r.choices[0].message.content;
});

await check("openai: chat.completions.create stream", async () => {
  const stream = await openai.chat.completions.create({
    model, messages, max_tokens: 12, temperature: 0, stream: true, stream_options: { include_usage: true },
  });
  let text = "";
  let finish = null;
  let usage = null;
  for await (const chunk of stream) {
    assert.equal(chunk.object, "chat.completion.chunk");
    if (chunk.choices.length > 0) {
      text += chunk.choices[0].delta.content ?? "";
      finish = chunk.choices[0].finish_reason ?? finish;
    }
    if (chunk.usage) usage = chunk.usage;
  }
  assert.equal(text, chatText);
  assert.ok(finish === "stop" || finish === "length");
  assert.ok(usage && usage.completion_tokens > 0, `usage ${JSON.stringify(usage)}`);
});

await check("openai: chat stream helper (runner)", async () => {
  const runner = openai.chat.completions.stream({ model, messages, max_tokens: 12, temperature: 0 });
  const done = await runner.finalChatCompletion();
  assert.equal(done.choices[0].message.content, chatText);
});

let completionText;
await check("openai: completions.create", async () => {
  const r = await openai.completions.create({ model, prompt: "Once upon a time", max_tokens: 10, temperature: 0 });
  assert.equal(r.object, "text_completion");
  assert.equal(r.choices[0].finish_reason, "length");
  assert.equal(r.usage.completion_tokens, 10);
  completionText = r.choices[0].text;
});

await check("openai: completions.create stream", async () => {
  const stream = await openai.completions.create({ model, prompt: "Once upon a time", max_tokens: 10, temperature: 0, stream: true });
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.text ?? "";
  assert.equal(text, completionText);
});

await check("openai: unknown model is NotFoundError", async () => {
  await assert.rejects(
    openai.chat.completions.create({ model: "no-such-model", messages }),
    (err) => err instanceof OpenAI.NotFoundError && err.status === 404 && /no-such-model/.test(err.message),
  );
});

await check("openai: context overflow is BadRequestError", async () => {
  await assert.rejects(
    openai.chat.completions.create({ model, messages, max_tokens: 100000 }),
    (err) => err instanceof OpenAI.BadRequestError && err.code === "context_length_exceeded" && /100000/.test(err.message),
  );
});

await check("openai: wrong type is BadRequestError", async () => {
  await assert.rejects(
    openai.chat.completions.create({ model, messages, temperature: "hot" }),
    (err) => err instanceof OpenAI.BadRequestError && /temperature/.test(err.message),
  );
});

await check("openai: wrong key is AuthenticationError", async () => {
  const bad = new OpenAI({ baseURL: `${base}/v1`, apiKey: "wrong", maxRetries: 0 });
  await assert.rejects(bad.models.list(), (err) => err instanceof OpenAI.AuthenticationError && err.status === 401);
});

// ---- ollama ----

await check("ollama: list", async () => {
  const r = await ollama.list();
  const m = r.models.find((m) => m.name === model);
  assert.ok(m, JSON.stringify(r));
  assert.equal(m.details.format, "gguf");
});

await check("ollama: show", async () => {
  const r = await ollama.show({ model });
  assert.ok(r.model_info["general.architecture"]);
  assert.ok(r.details.parameter_size);
});

await check("ollama: version", async () => {
  const r = await ollama.version();
  assert.equal(typeof r.version, "string");
});

let genText;
await check("ollama: generate", async () => {
  const r = await ollama.generate({ model, prompt: "Why is the sky blue?", options: { temperature: 0, num_predict: 10 } });
  assert.equal(r.done, true);
  assert.equal(r.done_reason, "length");
  assert.equal(r.eval_count, 10);
  assert.ok(r.total_duration > 0 && r.prompt_eval_count > 0);
  genText = r.response;
});

await check("ollama: generate stream", async () => {
  const stream = await ollama.generate({ model, prompt: "Why is the sky blue?", stream: true, options: { temperature: 0, num_predict: 10 } });
  let text = "";
  let last;
  for await (const part of stream) {
    text += part.response;
    last = part;
  }
  assert.equal(text, genText);
  assert.equal(last.done, true);
  assert.equal(last.eval_count, 10);
});

let ollamaChat;
await check("ollama: chat", async () => {
  const r = await ollama.chat({ model, messages, options: { temperature: 0, num_predict: 12 } });
  assert.equal(r.message.role, "assistant");
  assert.equal(r.done, true);
  ollamaChat = r.message.content;
  assert.equal(ollamaChat, chatText); // the same prompt, greedy, through another dialect
});

await check("ollama: chat stream", async () => {
  const stream = await ollama.chat({ model, messages, stream: true, options: { temperature: 0, num_predict: 12 } });
  let text = "";
  for await (const part of stream) text += part.message.content;
  assert.equal(text, ollamaChat);
});

await check("ollama: ps", async () => {
  const r = await ollama.ps();
  assert.ok(r.models.some((m) => m.name === model), JSON.stringify(r));
});

await check("ollama: unknown model is ResponseError 404", async () => {
  await assert.rejects(
    ollama.generate({ model: "no-such-model", prompt: "hi" }),
    (err) => err.name === "ResponseError" && err.status_code === 404 && /no-such-model/.test(err.error),
  );
});

await check("ollama: context overflow is ResponseError 400", async () => {
  await assert.rejects(
    ollama.generate({ model, prompt: "hi", options: { num_predict: 100000 } }),
    (err) => err.name === "ResponseError" && err.status_code === 400 && /100000/.test(err.error),
  );
});

await check("ollama: wrong key is ResponseError 401", async () => {
  const bad = new Ollama({ host: base, headers: { Authorization: "Bearer wrong" } });
  await assert.rejects(bad.list(), (err) => err.name === "ResponseError" && err.status_code === 401);
});

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log("all checks passed");
