// The official `openai` Node SDK as a user would drive it against the gateway, one scenario per
// run: `node sdk_client.mjs <base-url> <scenario> [model]`. Prints one JSON object of what the
// SDK handed back; tests/e2e/test_node_sdk.py starts the gateway and mocks and checks it.
import OpenAI from "openai";

const [baseURL, scenario, model = "smart"] = process.argv.slice(2);
const client = new OpenAI({ baseURL, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
const question = [{ role: "user", content: "Say hello" }];
const weather = {
  type: "function",
  function: {
    name: "get_weather",
    description: "Weather in a city",
    parameters: { type: "object", properties: { city: { type: "string" } }, required: ["city"] },
  },
};

const scenarios = {
  async chat() {
    const reply = await client.chat.completions.create({ model, messages: question });
    return { content: reply.choices[0].message.content, usage: reply.usage };
  },

  async "chat-stream"() {
    const stream = await client.chat.completions.create({
      model, messages: question, stream: true, stream_options: { include_usage: true },
    });
    let content = "";
    let usage = null;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks += 1;
      if (chunk.usage) usage = chunk.usage;
      for (const choice of chunk.choices) content += choice.delta.content ?? "";
    }
    return { content, usage, chunks };
  },

  async tools() {
    const first = await client.chat.completions.create({
      model, messages: [{ role: "user", content: "Weather in Paris?" }], tools: [weather],
    });
    const call = first.choices[0].message.tool_calls[0];
    const second = await client.chat.completions.create({
      model,
      tools: [weather],
      messages: [
        { role: "user", content: "Weather in Paris?" },
        first.choices[0].message,
        { role: "tool", tool_call_id: call.id, content: "18 C and sunny" },
      ],
    });
    return {
      finish_reason: first.choices[0].finish_reason,
      name: call.function.name,
      arguments: JSON.parse(call.function.arguments),
      answer: second.choices[0].message.content,
    };
  },

  async responses() {
    const response = await client.responses.create({
      model, input: "Say hello", instructions: "Be brief",
    });
    return { status: response.status, text: response.output_text, usage: response.usage };
  },

  async "responses-stream"() {
    const stream = client.responses.stream({ model, input: "Say hello" });
    const types = [];
    let deltas = "";
    for await (const event of stream) {
      types.push(event.type);
      if (event.type === "response.output_text.delta") deltas += event.delta;
    }
    const response = await stream.finalResponse();
    const text = response.output
      .flatMap((item) => item.content ?? [])
      .filter((part) => part.type === "output_text")
      .map((part) => part.text)
      .join("");
    return { types, deltas, text, status: response.status };
  },

  async embeddings() {
    const input = ["first text", "second text"];
    const base64 = await client.embeddings.create({ model, input });
    const floats = await client.embeddings.create({ model, input, encoding_format: "float" });
    return {
      base64: base64.data.map((d) => d.embedding),
      float: floats.data.map((d) => d.embedding),
      usage: base64.usage,
    };
  },

  async error() {
    try {
      await client.chat.completions.create({ model: "no-such-model", messages: question });
      return { thrown: false };
    } catch (error) {
      return {
        thrown: true,
        class: error.constructor.name,
        status: error.status,
        code: error.code,
        message: error.message,
      };
    }
  },
};

const run = scenarios[scenario];
if (!run) {
  console.error(`unknown scenario ${scenario}; one of ${Object.keys(scenarios).join(", ")}`);
  process.exit(2);
}
process.stdout.write(JSON.stringify(await run()) + "\n");
