// The openai and anthropic adapters end to end: ferryd against the mock
// upstream speaking each provider's wire format.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string openai_config(const MockUpstream& up, const std::string& extra = "") {
  return openai_provider("up", up, "api_key_env = \"FERRY_TEST_OPENAI_KEY\"\n" + extra) +
         "[pipelines.default]\nmodels = [\"gpt-test\"]\nproviders = [\"up\"]\n";
}

std::string anthropic_config(const MockUpstream& up) {
  return "[providers.claude]\nplugin = \"anthropic\"\nbase_url = \"" + up.url() +
         "\"\napi_key_env = \"FERRY_TEST_ANTHROPIC_KEY\"\n\n[pipelines.default]\nmodels = [\"claude-test\"]\n"
         "providers = [\"claude\"]\n";
}

const std::vector<std::string> kKeys{"FERRY_TEST_OPENAI_KEY=sk-test-123",
                                     "FERRY_TEST_ANTHROPIC_KEY=ant-test-456"};

TEST(OpenAIProvider, ForwardsTheRequestWithTheKeyAndReturnsTheAnswer) {
  MockUpstream up;
  auto f = Ferryd::start(openai_config(up), {}, kKeys);
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("gpt-test", "hello"));
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  EXPECT_EQ(j["choices"][0]["message"]["content"], "mock reply: hello");
  EXPECT_EQ(j["usage"]["total_tokens"],
            j["usage"]["prompt_tokens"].get<int>() + j["usage"]["completion_tokens"].get<int>());

  auto last = up.stats()["last_request"];
  EXPECT_EQ(last["path"], "/v1/chat/completions");
  EXPECT_EQ(last["headers"]["authorization"], "Bearer sk-test-123");
  EXPECT_EQ(last["body"]["model"], "gpt-test");
  EXPECT_EQ(last["body"]["messages"][0]["content"], "hello");
  // The key never reaches the log.
  EXPECT_EQ(f->output().find("sk-test-123"), std::string::npos);
}

TEST(OpenAIProvider, StreamsChunksAndAsksUpstreamForUsage) {
  MockUpstream up;
  auto f = Ferryd::start(openai_config(up), {}, kKeys);
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("gpt-test", "stream me", R"("stream":true)"));
  ASSERT_EQ(s.status, 200) << s.raw;
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), "mock reply: stream me");
  // ferryd asked for usage upstream to count tokens, but the client did not.
  EXPECT_EQ(up.stats()["last_request"]["body"]["stream_options"]["include_usage"], true);
  for (const auto& c : s.chunks()) EXPECT_FALSE(c.contains("usage") && c["usage"].is_object()) << c.dump();
  auto line = f->log_line("access request_id=");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("tokens_in=2 tokens_out=4"), std::string::npos) << *line;
}

TEST(OpenAIProvider, RenamesTheModelForTheUpstreamWhenConfigured) {
  MockUpstream up;
  auto f = Ferryd::start(openai_config(up, "model = \"mock-large\"\n"), {}, kKeys);
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("gpt-test", "hi"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(up.stats()["last_request"]["body"]["model"], "mock-large");
}

// The value of an unlabelled series in Prometheus text.
double metric(const std::string& text, const std::string& name) {
  auto at = text.find("\n" + name + " ");
  return at == std::string::npos ? -1 : std::stod(text.substr(at + name.size() + 2));
}

TEST(OpenAIProvider, ReusesPooledUpstreamConnections) {
  MockUpstream up;
  auto f = Ferryd::start("[server]\nthreads = 1\n\n" + openai_config(up), {}, kKeys);
  for (int i = 0; i < 10; ++i) {
    ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("gpt-test", "x")).status, 200);
    ASSERT_TRUE(
        http_post_sse(f->address(), "/v1/chat/completions", chat_body("gpt-test", "y", R"("stream":true)"))
            .ends_with_done());
  }
  auto text = http_get(f->address(), "/metrics").body;
  EXPECT_EQ(metric(text, "ferry_upstream_connections_opened"), 1) << text;
  EXPECT_EQ(metric(text, "ferry_upstream_connections_reused"), 19) << text;
}

TEST(OpenAIProvider, RefusesToStartWithoutItsApiKey) {
  MockUpstream up;
  auto r = ferryd_refusing(openai_config(up));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("FERRY_TEST_OPENAI_KEY is not set"), std::string::npos) << r.output;
}

TEST(AnthropicProvider, TranslatesTheRequestAndTheAnswer) {
  MockUpstream up;
  auto f = Ferryd::start(anthropic_config(up), {}, kKeys);
  auto body = R"({"model":"claude-test","messages":[{"role":"system","content":"be brief"},)"
              R"({"role":"user","content":"hello claude"}],"temperature":0.5,"stop":"END"})";
  auto r = http_post(f->address(), "/v1/chat/completions", body);
  ASSERT_EQ(r.status, 200) << r.body;
  auto j = r.json();
  EXPECT_EQ(j["object"], "chat.completion");
  EXPECT_EQ(j["choices"][0]["message"]["content"], "mock reply: hello claude");
  EXPECT_EQ(j["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(j["usage"]["prompt_tokens"], 4);  // "be brief" + "hello claude"
  EXPECT_EQ(j["usage"]["completion_tokens"], 4);

  auto last = up.stats()["last_request"];
  EXPECT_EQ(last["path"], "/v1/messages");
  EXPECT_EQ(last["headers"]["x-api-key"], "ant-test-456");
  EXPECT_EQ(last["headers"]["anthropic-version"], "2023-06-01");
  EXPECT_EQ(last["body"]["system"], "be brief");
  EXPECT_EQ(last["body"]["max_tokens"], 4096);
  EXPECT_EQ(last["body"]["stop_sequences"], json::Value::array({"END"}));
  EXPECT_EQ(last["body"]["messages"].size(), 1u);
  EXPECT_EQ(last["body"]["messages"][0]["role"], "user");
}

TEST(AnthropicProvider, TranslatesTheStreamIntoOpenAIChunks) {
  MockUpstream up;
  auto f = Ferryd::start(anthropic_config(up), {}, kKeys);
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("claude-test", "stream from claude",
                                   R"("stream":true,"stream_options":{"include_usage":true})"));
  ASSERT_EQ(s.status, 200) << s.raw;
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), "mock reply: stream from claude");
  auto chunks = s.chunks();
  ASSERT_GE(chunks.size(), 3u);
  EXPECT_EQ(chunks.front()["choices"][0]["delta"]["role"], "assistant");
  EXPECT_EQ(chunks[chunks.size() - 2]["choices"][0]["finish_reason"], "stop");
  EXPECT_EQ(chunks.back()["usage"]["prompt_tokens"], 3);
  EXPECT_EQ(chunks.back()["usage"]["completion_tokens"], 5);
}

TEST(AnthropicProvider, ReturnsToolCallsInTheOpenAIShape) {
  MockUpstream up;
  auto f = Ferryd::start(anthropic_config(up), {}, kKeys);
  std::string tools = R"("tools":[{"type":"function","function":{"name":"search","description":"web search",)"
                      R"("parameters":{"type":"object","properties":{"query":{"type":"string"}}}}}])";
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("claude-test", "find ferries", tools));
  ASSERT_EQ(r.status, 200) << r.body;
  auto msg = r.json()["choices"][0];
  EXPECT_EQ(msg["finish_reason"], "tool_calls");
  EXPECT_TRUE(msg["message"]["content"].is_null());
  EXPECT_EQ(msg["message"]["tool_calls"][0]["type"], "function");
  EXPECT_EQ(msg["message"]["tool_calls"][0]["function"]["name"], "search");
  auto args = json::Value::parse(msg["message"]["tool_calls"][0]["function"]["arguments"].get<std::string>());
  EXPECT_EQ(args["query"], "find ferries");
  EXPECT_EQ(up.stats()["last_request"]["body"]["tools"][0]["input_schema"]["type"], "object");

  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("claude-test", "find ferries", tools + R"(,"stream":true)"));
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  std::string streamed_args;
  std::string name;
  for (const auto& c : s.chunks()) {
    if (c["choices"].empty() || !c["choices"][0]["delta"].contains("tool_calls")) continue;
    const auto& call = c["choices"][0]["delta"]["tool_calls"][0];
    if (call.contains("id")) name = call["function"]["name"];
    streamed_args += call["function"]["arguments"].get<std::string>();
  }
  EXPECT_EQ(name, "search");
  EXPECT_EQ(json::Value::parse(streamed_args)["query"], "find ferries");
}

TEST(AnthropicProvider, MapsMaxTokensToFinishReasonLength) {
  MockUpstream up;
  auto f = Ferryd::start(anthropic_config(up), {}, kKeys);
  auto r = http_post(f->address(), "/v1/chat/completions",
                     chat_body("claude-test", "a long answer please", R"("max_tokens":2)"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["finish_reason"], "length");
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "mock reply:");
}

TEST(AnthropicProvider, OverloadedFailsOverAndInvalidRequestDoesNot) {
  MockUpstream up;
  auto f = Ferryd::start(anthropic_config(up), {}, kKeys);
  auto overloaded =
      http_post(f->address(), "/v1/chat/completions", chat_body("claude-test", "x [[fault:status=529]]"));
  EXPECT_EQ(overloaded.status, 503) << overloaded.body;
  EXPECT_NE(error_message(overloaded).find("Anthropic HTTP 529"), std::string::npos) << overloaded.body;
  auto bad =
      http_post(f->address(), "/v1/chat/completions", chat_body("claude-test", "x [[fault:status=400]]"));
  EXPECT_EQ(bad.status, 400) << bad.body;
  EXPECT_EQ(bad.json()["error"]["type"], "invalid_request_error");
}

// Several upstream keys: requests take them in turn, and one the upstream
// rate-limits is set aside for its Retry-After while the other carries on.
TEST(ProviderKeys, RequestsTakeTurnsAndARateLimitedKeyIsSetAside) {
  MockUpstream up;
  auto f = Ferryd::start(
      openai_provider("up", up, "api_key_envs = [\"FERRY_TEST_K1\", \"FERRY_TEST_K2\"]\n") +
          "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\n",
      {}, {"FERRY_TEST_K1=sk-test-key-one-0123456789", "FERRY_TEST_K2=sk-test-key-two-0123456789"});
  auto used = [&](const std::string& id) {
    auto line = f->log_line("access request_id=" + id + " ");
    if (!line) return std::string("?");
    auto at = line->find("tag.upstream_key=\"");
    return at == std::string::npos ? std::string("-") : line->substr(at + 18, 1);
  };
  auto send = [&](const std::string& id) {
    return http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), {{"x-request-id", id}})
        .status;
  };
  std::string turns;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(send("turn-" + std::to_string(i)), 200);
    turns += used("turn-" + std::to_string(i));
  }
  EXPECT_TRUE(turns == "1212" || turns == "2121") << turns;
  EXPECT_NE(up.stats()["last_request"]["headers"].value("authorization", "").find("sk-test-key-"),
            std::string::npos);

  // The key of the next request gets a 429 (Retry-After: 30): that key sits
  // out, and every request after it goes to the other one.
  up.set_faults(R"({"status":429,"retry_after":30,"count":1})");
  EXPECT_EQ(send("limited"), 429);
  std::string limited = used("limited");
  ASSERT_TRUE(limited == "1" || limited == "2") << limited;
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(send("aside-" + std::to_string(i)), 200);
    EXPECT_NE(used("aside-" + std::to_string(i)), limited) << "the rate-limited key was used again at once";
  }
  EXPECT_NE(http_get(f->address(), "/metrics").body.find("ferry_upstream_keys_set_aside_total"),
            std::string::npos);
}

TEST(ProviderKeys, OneKeyOrSeveralNotBoth) {
  MockUpstream up;
  auto r = ferryd_refusing(openai_provider("up", up, "api_key_env = \"A\"\napi_key_envs = [\"B\"]\n") +
                           "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("set api_key_env (one key) or api_key_envs (several), not both"), std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ferry::test
