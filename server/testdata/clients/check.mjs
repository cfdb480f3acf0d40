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

await check("openai: chat logprobs", async () => {
  const r = await openai.chat.completions.create({ model, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 });
  const content = r.choices[0].logprobs.content;
  assert.equal(content.length, r.usage.completion_tokens);
  for (const t of content) {
    assert.ok(t.logprob <= 0 && Array.isArray(t.bytes), JSON.stringify(t));
    assert.equal(t.top_logprobs.length, 3);
    assert.equal(t.top_logprobs[0].token, t.token); // greedy
  }
  // The stream helper accumulates the same entries from the chunks.
  const done = await openai.chat.completions
    .stream({ model, messages, max_tokens: 6, temperature: 0, logprobs: true, top_logprobs: 3 })
    .finalChatCompletion();
  assert.deepEqual(done.choices[0].logprobs.content.map((t) => [t.token, t.logprob]), content.map((t) => [t.token, t.logprob]));
  await assert.rejects(
    openai.chat.completions.create({ model, messages, logprobs: true, top_logprobs: 21 }),
    (err) => err instanceof OpenAI.BadRequestError && err.param === "top_logprobs",
  );
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

// ---- structured output and tools ----

const answerSchema = {
  type: "object",
  properties: {
    answer: { type: "string", enum: ["yes", "no", "maybe"] },
    confidence: { type: "integer", minimum: 0, maximum: 9 },
  },
  required: ["answer", "confidence"],
  additionalProperties: false,
};
function checkAnswer(text) {
  const v = JSON.parse(text);
  assert.deepEqual(Object.keys(v).sort(), ["answer", "confidence"], text);
  assert.ok(["yes", "no", "maybe"].includes(v.answer), text);
  assert.ok(Number.isInteger(v.confidence) && v.confidence >= 0 && v.confidence <= 9, text);
}
const tools = [
  {
    type: "function",
    function: {
      name: "get_weather",
      description: "Current weather in a city",
      parameters: {
        type: "object",
        properties: { city: { type: "string", maxLength: 12 }, unit: { type: "string", enum: ["C", "F"] } },
        required: ["city", "unit"],
        additionalProperties: false,
      },
    },
  },
  {
    type: "function",
    function: {
      name: "add",
      description: "Add two integers",
      parameters: {
        type: "object",
        properties: { a: { type: "integer", minimum: -99, maximum: 99 }, b: { type: "integer", minimum: -99, maximum: 99 } },
        required: ["a", "b"],
        additionalProperties: false,
      },
    },
  },
];
function checkCall(call, names) {
  assert.equal(call.type, "function");
  assert.ok(call.id.startsWith("call_"), call.id);
  assert.ok(names.includes(call.function.name), call.function.name);
  const args = typeof call.function.arguments === "string" ? JSON.parse(call.function.arguments) : call.function.arguments;
  if (call.function.name === "add") {
    assert.ok(Number.isInteger(args.a) && Number.isInteger(args.b), JSON.stringify(args));
  } else {
    assert.ok(typeof args.city === "string" && ["C", "F"].includes(args.unit), JSON.stringify(args));
  }
}
const toolMessages = [{ role: "user", content: "What is 2+3, and the weather in Oslo?" }];

await check("openai: response_format json_schema", async () => {
  const r = await openai.chat.completions.create({
    model, messages, max_tokens: 100, temperature: 0,
    response_format: { type: "json_schema", json_schema: { name: "answer", strict: true, schema: answerSchema } },
  });
  assert.equal(r.choices[0].finish_reason, "stop");
  checkAnswer(r.choices[0].message.content);
});

await check("openai: response_format json_object, streamed", async () => {
  const stream = await openai.chat.completions.create({
    model, messages, max_tokens: 200, temperature: 0, stream: true, response_format: { type: "json_object" },
  });
  let text = "";
  let finish = null;
  for await (const chunk of stream) {
    text += chunk.choices[0]?.delta?.content ?? "";
    finish = chunk.choices[0]?.finish_reason ?? finish;
  }
  if (finish === "stop") {
    const v = JSON.parse(text);
    assert.equal(typeof v, "object");
    assert.ok(v !== null && !Array.isArray(v), text);
  } else {
    assert.equal(finish, "length");
    assert.ok(text.trimStart().startsWith("{"), text);
  }
});

await check("openai: invalid schema is BadRequestError", async () => {
  await assert.rejects(
    openai.chat.completions.create({
      model, messages, response_format: { type: "json_schema", json_schema: { name: "bad", schema: { type: "frobnicate" } } },
    }),
    (err) => err instanceof OpenAI.BadRequestError && /response_format/.test(err.message),
  );
});

await check("openai: tool_choice required (one call)", async () => {
  const r = await openai.chat.completions.create({
    model, messages: toolMessages, tools, tool_choice: "required", parallel_tool_calls: false, max_tokens: 140, temperature: 0,
  });
  assert.equal(r.choices[0].finish_reason, "tool_calls");
  assert.ok(r.choices[0].message.tool_calls.length >= 1);
  for (const c of r.choices[0].message.tool_calls) checkCall(c, ["get_weather", "add"]);
});

await check("openai: tool_choice required, parallel calls", async () => {
  const r = await openai.chat.completions.create({
    model, messages: toolMessages, tools, tool_choice: "required", max_tokens: 140, temperature: 0,
  });
  // The random-weights model keeps calling until max_tokens; the complete
  // calls are returned.
  assert.ok(["tool_calls", "length"].includes(r.choices[0].finish_reason));
  assert.ok(r.choices[0].message.tool_calls.length >= 1);
  for (const c of r.choices[0].message.tool_calls) checkCall(c, ["get_weather", "add"]);
});

await check("openai: named tool_choice, streamed (runner)", async () => {
  const runner = openai.chat.completions.stream({
    model, messages: toolMessages, tools, tool_choice: { type: "function", function: { name: "add" } },
    max_tokens: 140, temperature: 0,
  });
  const done = await runner.finalChatCompletion();
  assert.equal(done.choices[0].finish_reason, "tool_calls");
  assert.equal(done.choices[0].message.tool_calls.length, 1);
  checkCall(done.choices[0].message.tool_calls[0], ["add"]);
});

await check("openai: tool_choice none never calls", async () => {
  const r = await openai.chat.completions.create({
    model, messages: toolMessages, tools, tool_choice: "none", max_tokens: 12, temperature: 0,
  });
  assert.ok(!r.choices[0].message.tool_calls || r.choices[0].message.tool_calls.length === 0);
  assert.notEqual(r.choices[0].finish_reason, "tool_calls");
});

await check("openai: tool result round trip", async () => {
  const r = await openai.chat.completions.create({
    model, max_tokens: 8, temperature: 0, tools,
    messages: [
      ...toolMessages,
      { role: "assistant", content: null, tool_calls: [{ id: "call_1", type: "function", function: { name: "add", arguments: '{"a":2,"b":3}' } }] },
      { role: "tool", tool_call_id: "call_1", content: "5" },
    ],
  });
  assert.equal(r.choices[0].message.role, "assistant");
});

await check("ollama: chat format schema", async () => {
  const r = await ollama.chat({ model, messages, format: answerSchema, options: { temperature: 0, num_predict: 100 } });
  assert.equal(r.done_reason, "stop");
  checkAnswer(r.message.content);
});

await check("ollama: generate format json", async () => {
  const r = await ollama.generate({ model, prompt: "A JSON object:", format: "json", options: { temperature: 0, num_predict: 200 } });
  if (r.done_reason === "stop") assert.equal(typeof JSON.parse(r.response), "object");
  else assert.ok(r.response.trimStart().startsWith("{"), r.response);
});

await check("ollama: invalid format is ResponseError 400", async () => {
  await assert.rejects(
    ollama.chat({ model, messages, format: { type: "frobnicate" } }),
    (err) => err.name === "ResponseError" && err.status_code === 400 && /format/.test(err.error),
  );
});

await check("ollama: chat with tools", async () => {
  const r = await ollama.chat({ model, messages: toolMessages, tools, options: { temperature: 0, num_predict: 12 } });
  assert.equal(r.message.role, "assistant");
  for (const c of r.message.tool_calls ?? []) {
    assert.equal(typeof c.function.arguments, "object");
    checkCall({ ...c, type: "function", id: c.id ?? "call_x" }, ["get_weather", "add"]);
  }
});

await check("ollama: think false", async () => {
  const r = await ollama.chat({ model, messages, think: false, options: { temperature: 0, num_predict: 4 } });
  assert.equal(r.done, true);
  assert.ok(!r.message.thinking);
});

// ---- embeddings ----

const norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0));
// The same float32 values: JSON carries the shortest decimal of each float32,
// base64 (the openai client's default) the float32 itself.
const sameVec = (a, b) => a.length === b.length && a.every((x, i) => Math.fround(x) === Math.fround(b[i]));

let oaiVec;
await check("openai: embeddings.create (base64 by default, batched = alone)", async () => {
  const one = await openai.embeddings.create({ model, input: "The quick brown fox" });
  assert.equal(one.object, "list");
  assert.equal(one.data.length, 1);
  assert.equal(one.data[0].object, "embedding");
  oaiVec = one.data[0].embedding;
  assert.ok(Array.isArray(oaiVec) && oaiVec.length > 0);
  assert.ok(Math.abs(norm(oaiVec) - 1) < 1e-5, `norm ${norm(oaiVec)}`);
  assert.ok(one.usage.prompt_tokens > 0 && one.usage.total_tokens === one.usage.prompt_tokens);
  const many = await openai.embeddings.create({ model, input: ["hello", "The quick brown fox"], encoding_format: "float" });
  assert.deepEqual(many.data.map((d) => d.index), [0, 1]);
  assert.ok(sameVec(many.data[1].embedding, oaiVec), "batched vector differs from alone");
});

await check("openai: embeddings too long is BadRequestError", async () => {
  await assert.rejects(
    openai.embeddings.create({ model, input: "word ".repeat(700) }),
    (err) => err instanceof OpenAI.BadRequestError && err.code === "context_length_exceeded",
  );
});

await check("ollama: embed", async () => {
  const r = await ollama.embed({ model, input: ["The quick brown fox", "hello"] });
  assert.equal(r.embeddings.length, 2);
  assert.ok(sameVec(r.embeddings[0], oaiVec), "ollama embed differs from openai embeddings");
  assert.ok(r.prompt_eval_count > 0);
  const t = await ollama.embed({ model, input: "word ".repeat(700) }); // truncate defaults to true
  assert.equal(t.embeddings.length, 1);
  await assert.rejects(
    ollama.embed({ model, input: "word ".repeat(700), truncate: false }),
    (err) => err.name === "ResponseError" && err.status_code === 400 && /context length/.test(err.error),
  );
});

await check("ollama: embeddings (legacy)", async () => {
  const r = await ollama.embeddings({ model, prompt: "The quick brown fox" });
  const n = norm(r.embedding);
  assert.equal(r.embedding.length, oaiVec.length);
  assert.ok(r.embedding.every((x, i) => Math.abs(x / n - oaiVec[i]) < 1e-6));
});

if (failures > 0) {
  console.log(`${failures} check(s) failed`);
  process.exit(1);
}
console.log("all checks passed");
