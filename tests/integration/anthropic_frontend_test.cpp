// The anthropic frontend through the real ferryd: Anthropic Messages requests
// reach every pipeline, and routing, failover, budgets, guardrails, auth and
// limits behave exactly as on the OpenAI door, with every error in Anthropic's
// shape. Hostile input gets a precise 400 naming the field.
#include <regex>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

const HeaderList kAnthropic{{"anthropic-version", "2023-06-01"}};

std::string messages_body(const std::string& model, const std::string& text, const std::string& extra = "") {
  return R"({"model":")" + model + R"(","max_tokens":256,"messages":[{"role":"user","content":")" + text +
         "\"}]" + (extra.empty() ? "" : "," + extra) + "}";
}

HttpResponse messages(const Ferryd& f, const std::string& body, HeaderList headers = kAnthropic) {
  return http_post(f.address(), "/v1/messages", body, headers);
}

// Asserts Anthropic's error shape and returns {type, message}.
std::pair<std::string, std::string> anthropic_error(const HttpResponse& r) {
  auto j = r.json();
  EXPECT_EQ(j.value("type", ""), "error") << r.body;
  if (!j.contains("error") || !j["error"].is_object()) {
    ADD_FAILURE() << "not an Anthropic error: " << r.body;
    return {};
  }
  return {j["error"].value("type", ""), j["error"].value("message", "")};
}

// The text of a streamed Anthropic answer, and its event types in order.
struct Streamed {
  std::string text;
  std::vector<std::string> types;
  std::string stop_reason;
  json::Value usage;
};
Streamed read_stream(const SseResponse& s) {
  Streamed out;
  for (const auto& data : s.events) {
    json::Value e;
    EXPECT_TRUE(json::parse(data, e, nullptr)) << data;
    std::string type = e.value("type", "");
    out.types.push_back(type);
    if (type == "content_block_delta" && e["delta"].value("type", "") == "text_delta")
      out.text += e["delta"].value("text", "");
    if (type == "message_delta") {
      out.stop_reason = e["delta"].value("stop_reason", "");
      out.usage = e["usage"];
    }
  }
  return out;
}

std::string two_upstreams(const MockUpstream& a, const MockUpstream& b, const std::string& more = "",
                          const std::string& middleware = "") {
  return "[log]\nlevel = \"info\"\n\n" + openai_provider("a", a) + openai_provider("b", b) + more +
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\nrouter = \"priority\"\n" +
         (middleware.empty() ? "" : "middleware = [" + middleware + "]\n");
}

TEST(AnthropicDoor, FailsOverToTheNextProviderAsTheOpenAIDoorDoes) {
  MockUpstream a, b;
  auto f = Ferryd::start(two_upstreams(a, b));
  a.set_faults(R"({"status":503})");
  auto r = messages(*f, messages_body("m", "over the water"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["content"][0]["text"], "mock reply: over the water");
  EXPECT_EQ(a.requests(), 1);
  EXPECT_EQ(b.requests(), 1);
  EXPECT_TRUE(f->log_line("frontend=anthropic status=200")) << f->output();
  EXPECT_TRUE(f->log_line("tried=a,b")) << f->output();

  // Streamed: the failure happens before the first byte, so b serves the whole stream.
  auto s = http_post_sse(f->address(), "/v1/messages", messages_body("m", "and back", R"("stream":true)"),
                         kAnthropic);
  auto got = read_stream(s);
  EXPECT_EQ(got.text, "mock reply: and back") << s.raw;
  EXPECT_EQ(got.types.front(), "message_start");
  EXPECT_EQ(got.types.back(), "message_stop");
  EXPECT_EQ(got.stop_reason, "end_turn");
}

TEST(AnthropicDoor, AStreamThatFailsAfterItStartedEndsWithAnErrorEvent) {
  MockUpstream a, b;
  auto f = Ferryd::start(two_upstreams(a, b));
  a.set_faults(R"({"typed_error":2})");
  auto s = http_post_sse(f->address(), "/v1/messages",
                         messages_body("m", "one two three four", R"("stream":true)"), kAnthropic);
  auto got = read_stream(s);
  ASSERT_FALSE(got.types.empty()) << s.raw;
  EXPECT_EQ(got.types.back(), "error") << s.raw;
  EXPECT_EQ(std::count(got.types.begin(), got.types.end(), "message_stop"), 0) << s.raw;
  EXPECT_NE(s.raw.find("event: error"), std::string::npos) << s.raw;
  EXPECT_EQ(b.requests(), 0) << "nothing fails over once the client has bytes";
}

TEST(AnthropicDoor, ABudgetIsChargedForAStreamedAnswer) {
  auto f = Ferryd::start(
      "[log]\nlevel = \"info\"\n\n[providers.mock]\nplugin = \"mock\"\n\n"
      "[middleware.budget]\nplugin = \"budget\"\nperiod = \"month\"\n"
      "prices = { m = { input = 1000, output = 1000 } }\nbudgets = [{ per = \"user\", usd = 5 }]\n\n"
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"budget\"]\n");
  // metadata.user_id is who asks: the budget is the user's.
  auto s =
      http_post_sse(f->address(), "/v1/messages",
                    messages_body("m", "count these words", R"("stream":true,"metadata":{"user_id":"ann"})"),
                    {{"anthropic-version", "2023-06-01"}, {"x-request-id", "anthropic-stream"}});
  auto got = read_stream(s);
  ASSERT_EQ(got.text, "Ferry mock reply: count these words") << s.raw;
  ASSERT_TRUE(got.usage.is_object()) << s.raw;
  int64_t in = got.usage.value("input_tokens", int64_t{0}),
          out = got.usage.value("output_tokens", int64_t{0});
  EXPECT_GT(out, 0) << s.raw;
  ASSERT_TRUE(f->log_line("request_id=anthropic-stream ")) << f->output();
  auto spend = http_get(f->admin_address(), "/admin/plugins/budget/spend?per=user");
  auto budgets = spend.json()["budgets"];
  ASSERT_EQ(budgets.size(), 1u) << spend.body;
  EXPECT_EQ(budgets[0]["id"], "ann");
  EXPECT_NEAR(budgets[0]["spent_usd"].get<double>(), static_cast<double>(in + out) / 1000.0, 1e-9)
      << spend.body;
}

TEST(AnthropicDoor, GuardrailsRedactAStreamedTextDeltaAcrossChunks) {
  MockUpstream up;
  auto f = Ferryd::start(
      "[log]\nlevel = \"info\"\n\n" + openai_provider("up", up) +
      "[middleware.guard]\nplugin = \"guardrails\"\napply_to = \"output\"\n"
      "pii = { card = \"redact\" }\n\n"
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\nmiddleware = [\"guard\"]\n");
  auto s =
      http_post_sse(f->address(), "/v1/messages",
                    messages_body("m", "card 4111 1111 1111 1111 please", R"("stream":true)"), kAnthropic);
  auto got = read_stream(s);
  // The mock streamed the card in four chunks; the client never saw a digit of it.
  EXPECT_EQ(got.text, "mock reply: card [REDACTED:card] please") << s.raw;
  EXPECT_EQ(s.raw.find("4111"), std::string::npos) << s.raw;
  EXPECT_EQ(got.types.back(), "message_stop");
}

TEST(AnthropicDoor, AuthTakesTheKeyFromXApiKeyAndRefusesInAnthropicShape) {
  // SHA-256 of "sk-test-alice".
  auto f = Ferryd::start(
      "[log]\nlevel = \"info\"\n\n[providers.mock]\nplugin = \"mock\"\n\n[middleware.auth]\nplugin = "
      "\"auth\"\n"
      "keys = [{ sha256 = \"4d692786b022a5d5a48381dcaf1e5e346366feb5579a1d699de2991d153b05f9\", owner = "
      "\"alice\" }]\n\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = "
      "[\"auth\"]\n");
  auto ok = messages(*f, messages_body("m", "hi"),
                     {{"anthropic-version", "2023-06-01"}, {"x-api-key", "sk-test-alice"}});
  EXPECT_EQ(ok.status, 200) << ok.body;
  auto wrong =
      messages(*f, messages_body("m", "hi"), {{"anthropic-version", "2023-06-01"}, {"x-api-key", "sk-nope"}});
  EXPECT_EQ(wrong.status, 401);
  EXPECT_EQ(anthropic_error(wrong).first, "authentication_error") << wrong.body;
  EXPECT_FALSE(wrong.header("request-id").empty());
}

TEST(AnthropicDoor, EveryErrorTheHostProducesHasAnthropicsTypeAndStatus) {
  MockUpstream a, b;
  auto f = Ferryd::start(two_upstreams(a, b,
                                       "[middleware.limits]\nplugin = \"rate-limit\"\nlimits = [{ per = "
                                       "\"global\", requests_per_minute = 1 }]\n\n",
                                       "\"limits\""));
  auto unknown = messages(*f, messages_body("nope", "hi"));
  EXPECT_EQ(unknown.status, 404);
  EXPECT_EQ(anthropic_error(unknown).first, "not_found_error");

  a.set_faults(R"({"status":503})");
  b.set_faults(R"({"status":503})");
  auto down = messages(*f, messages_body("m", "hi"));
  EXPECT_EQ(down.status, 502) << down.body;
  EXPECT_EQ(anthropic_error(down).first, "api_error");

  auto limited = messages(*f, messages_body("m", "hi"));
  EXPECT_EQ(limited.status, 429) << limited.body;
  EXPECT_EQ(anthropic_error(limited).first, "rate_limit_error");
  EXPECT_FALSE(limited.header("retry-after").empty()) << limited.body;

  auto not_json = messages(*f, "{\"model\":");
  EXPECT_EQ(not_json.status, 400);
  EXPECT_EQ(anthropic_error(not_json).first, "invalid_request_error");
  expect_healthy(f->address());
}

// Every field the frontend reads, with a wrong type or value: a 400 naming it.
TEST(AnthropicDoor, AWrongTypeInAnyFieldIsA400NamingTheField) {
  auto f = Ferryd::start(mock_pipeline());
  const std::string user = R"({"role":"user","content":"hi"})";
  struct Case {
    std::string body;
    std::string field;
  };
  const std::vector<Case> cases = {
      {R"([1,2])", "JSON object"},
      {R"({"max_tokens":5,"messages":[)" + user + "]}", "model"},
      {R"({"model":1,"max_tokens":5,"messages":[)" + user + "]}", "model"},
      {R"({"model":"m","messages":[)" + user + "]}", "max_tokens"},
      {R"({"model":"m","max_tokens":"5","messages":[)" + user + "]}", "max_tokens"},
      {R"({"model":"m","max_tokens":0,"messages":[)" + user + "]}", "max_tokens"},
      {R"({"model":"m","max_tokens":2.5,"messages":[)" + user + "]}", "max_tokens"},
      {R"({"model":"m","max_tokens":5})", "messages"},
      {R"({"model":"m","max_tokens":5,"messages":{}})", "messages"},
      {R"({"model":"m","max_tokens":5,"messages":[1]})", "messages.0"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":5,"content":"x"}]})", "messages.0.role"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user"}]})", "messages.0.content"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":5}]})", "messages.0.content"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"text":"x"}]}]})",
       "messages.0.content.0.type"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"text","text":5}]}]})",
       "messages.0.content.0.text"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"image","source":{"type":"x"}}]}]})",
       "messages.0.content.0.source.type"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[{"type":"tool_result","tool_use_id":"t","content":5}]}]})",
       "messages.0.content.0.content"},
      {R"({"model":"m","max_tokens":5,"messages":[{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"f","input":"x"}]}]})",
       "messages.0.content.0.input"},
      {R"({"model":"m","max_tokens":5,"system":5,"messages":[)" + user + "]}", "system"},
      {R"({"model":"m","max_tokens":5,"system":[{"type":"image"}],"messages":[)" + user + "]}",
       "system.0.type"},
      {R"({"model":"m","max_tokens":5,"temperature":"hot","messages":[)" + user + "]}", "temperature"},
      {R"({"model":"m","max_tokens":5,"top_p":[],"messages":[)" + user + "]}", "top_p"},
      {R"({"model":"m","max_tokens":5,"top_k":"a","messages":[)" + user + "]}", "top_k"},
      {R"({"model":"m","max_tokens":5,"stop_sequences":"x","messages":[)" + user + "]}", "stop_sequences"},
      {R"({"model":"m","max_tokens":5,"stop_sequences":[1],"messages":[)" + user + "]}", "stop_sequences.0"},
      {R"({"model":"m","max_tokens":5,"metadata":1,"messages":[)" + user + "]}", "metadata"},
      {R"({"model":"m","max_tokens":5,"metadata":{"user_id":1},"messages":[)" + user + "]}",
       "metadata.user_id"},
      {R"({"model":"m","max_tokens":5,"tools":{},"messages":[)" + user + "]}", "tools"},
      {R"({"model":"m","max_tokens":5,"tools":[{"input_schema":{}}],"messages":[)" + user + "]}",
       "tools.0.name"},
      {R"({"model":"m","max_tokens":5,"tools":[{"name":"f","input_schema":1}],"messages":[)" + user + "]}",
       "tools.0.input_schema"},
      {R"({"model":"m","max_tokens":5,"tools":[{"type":"web_search_20250305","name":"w"}],"messages":[)" +
           user + "]}",
       "tools.0.type"},
      {R"({"model":"m","max_tokens":5,"tool_choice":"auto","messages":[)" + user + "]}", "tool_choice"},
      {R"({"model":"m","max_tokens":5,"tool_choice":{"type":"x"},"messages":[)" + user + "]}",
       "tool_choice.type"},
      {R"({"model":"m","max_tokens":5,"stream":"yes","messages":[)" + user + "]}", "stream"},
      {R"({"model":"m","max_tokens":5,"thinking":1,"messages":[)" + user + "]}", "thinking"},
  };
  for (const auto& c : cases) {
    auto r = messages(*f, c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    auto [type, message] = anthropic_error(r);
    EXPECT_EQ(type, "invalid_request_error") << c.body;
    EXPECT_TRUE(message.starts_with(c.field) || message.find(c.field) != std::string::npos)
        << c.body << " -> " << message;
  }
  expect_healthy(f->address());
}

TEST(AnthropicDoor, HostileValidInputGetsAPreciseAnswerAndTheDaemonStaysUp) {
  auto f = Ferryd::start(mock_pipeline());
  // Nesting past [limits] max_json_depth, in a field the frontend never reads.
  std::string deep = R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":"x"}],"extra":)" +
                     std::string(200000, '[') + std::string(200000, ']') + "}";
  auto nested = messages(*f, deep);
  EXPECT_EQ(nested.status, 400);
  EXPECT_NE(anthropic_error(nested).second.find("max_json_depth"), std::string::npos)
      << nested.body.substr(0, 300);
  // A number a double cannot hold.
  auto huge = messages(*f, messages_body("m", "hi", R"("temperature":1e400)"));
  EXPECT_EQ(huge.status, 400) << huge.body;
  EXPECT_EQ(anthropic_error(huge).first, "invalid_request_error");
  // Bytes that are not UTF-8 in the text: refused at the first parse, quoted in the answer.
  auto bad_utf8 = messages(*f, messages_body("m", "caf\xe9"));
  EXPECT_EQ(bad_utf8.status, 400) << bad_utf8.body;
  // Ten thousand content blocks, within the limits: answered.
  std::string blocks;
  for (int i = 0; i < 10000; ++i) blocks += std::string(i ? "," : "") + R"({"type":"text","text":"w"})";
  auto many =
      messages(*f, R"({"model":"m","max_tokens":5,"messages":[{"role":"user","content":[)" + blocks + "]}]}");
  EXPECT_EQ(many.status, 200) << many.body.substr(0, 300);
  expect_healthy(f->address());
}

TEST(AnthropicDoor, ModelsAndCountTokens) {
  auto f = Ferryd::start(mock_pipeline());
  auto models = http_get(f->address(), "/v1/models", kAnthropic);
  ASSERT_EQ(models.status, 200);
  EXPECT_EQ(models.json()["data"][0]["type"], "model");
  EXPECT_EQ(models.json()["data"][0]["id"], "m");
  EXPECT_EQ(models.json()["has_more"], false);
  // Without anthropic-version, GET /v1/models is the OpenAI door's.
  EXPECT_EQ(http_get(f->address(), "/v1/models").json()["object"], "list");

  auto count = http_post(
      f->address(), "/v1/messages/count_tokens",
      R"({"model":"m","messages":[{"role":"user","content":"one two three four five six"}]})", kAnthropic);
  ASSERT_EQ(count.status, 200) << count.body;
  EXPECT_GE(count.json()["input_tokens"].get<int64_t>(), 6);
  EXPECT_EQ(count.header("x-ferry-token-count"), "estimate");
  auto bad = http_post(f->address(), "/v1/messages/count_tokens", R"({"model":"m"})", kAnthropic);
  EXPECT_EQ(bad.status, 400);
  EXPECT_EQ(anthropic_error(bad).second, "messages: Field required");
}

TEST(Frontends, ADoorExposesOnlyTheModelsItsBlockNames) {
  auto f = Ferryd::start(
      "[log]\nlevel = \"info\"\n\n[providers.mock]\nplugin = \"mock\"\n\n[frontends.openai]\n\n"
      "[frontends.anthropic]\nmodels = [\"claude-*\"]\n\n"
      "[pipelines.default]\nmodels = [\"m\", \"claude-x\"]\nproviders = [\"mock\"]\n");
  auto hidden = messages(*f, messages_body("m", "hi"));
  EXPECT_EQ(hidden.status, 404);
  EXPECT_EQ(anthropic_error(hidden).first, "not_found_error");
  EXPECT_EQ(messages(*f, messages_body("claude-x", "hi")).status, 200);
  auto listed = http_get(f->address(), "/v1/models", kAnthropic).json()["data"];
  ASSERT_EQ(listed.size(), 1u);
  EXPECT_EQ(listed[0]["id"], "claude-x");
  // The OpenAI door still serves both.
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi")).status, 200);
}

TEST(Frontends, OnlyTheDeclaredDoorsAreOpen) {
  auto f = Ferryd::start(
      "[log]\nlevel = \"info\"\n\n[providers.mock]\nplugin = \"mock\"\n\n[frontends.openai]\n\n"
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\n");
  EXPECT_EQ(messages(*f, messages_body("m", "hi")).status, 404);
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi")).status, 200);
}

TEST(Frontends, TwoDoorsClaimingOneRouteAreRefusedAtTheirPosition) {
  auto r = ferryd_refusing(
      "[providers.mock]\nplugin = \"mock\"\n\n[frontends.one]\nplugin = \"openai\"\n\n"
      "[frontends.two]\nplugin = \"openai\"\n\n"
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\n");
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(
      r.output.find(":8:10: [frontends.two]: route POST /v1/chat/completions is claimed by both frontend "
                    "'one' and frontend 'two'"),
      std::string::npos)
      << r.output;
}

TEST(Frontends, AWrongMethodOnAKnownPathIs405WithAllow) {
  auto f = Ferryd::start(mock_pipeline());
  auto r = http_get(f->address(), "/v1/messages", kAnthropic);
  EXPECT_EQ(r.status, 405);
  EXPECT_EQ(r.header("allow"), "POST");
}

}  // namespace
}  // namespace ferry::test

namespace ferry::test {
namespace {

// An anthropic provider at a mock upstream; FERRY_TEST_ANTHROPIC_KEY is its key.
std::string native_pipeline(const MockUpstream& up, const std::string& middleware_blocks = "",
                            const std::string& middleware = "") {
  return "[log]\nlevel = \"info\"\n\n[providers.claude]\nplugin = \"anthropic\"\nbase_url = \"" + up.url() +
         "\"\napi_key_env = \"FERRY_TEST_ANTHROPIC_KEY\"\nmodels = { \"m\" = \"claude-upstream\" }\n\n" +
         middleware_blocks + "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"claude\"]\n" +
         (middleware.empty() ? "" : "middleware = [" + middleware + "]\n");
}

// What an Anthropic client sends that the canonical request has no room for:
// an earlier turn's thinking block and its signature, cache_control, and a
// field Ferry has never heard of.
const std::string kNativeBody =
    R"({"model":"m","max_tokens":64,"ferry_future_field":{"x":[1,2]},)"
    R"("system":[{"type":"text","text":"be brief","cache_control":{"type":"ephemeral"}}],)"
    R"("messages":[{"role":"user","content":"first"},)"
    R"({"role":"assistant","content":[{"type":"thinking","thinking":"hmm","signature":"c2lnbmF0dXJl"},)"
    R"({"type":"text","text":"answer"}]},)"
    R"({"role":"user","content":[{"type":"text","text":"pass me through","cache_control":{"type":"ephemeral"}}]}]})";

// The mock numbers its messages: the one thing two answers to one request differ in.
std::string without_message_ids(std::string text) {
  return std::regex_replace(text, std::regex("msg_mock_[0-9]+"), "msg_mock_N");
}

json::Value with_model(json::Value body, const std::string& model) {
  body["model"] = model;
  return body;
}

TEST(AnthropicPassThrough, TheUpstreamGetsTheClientsBodyWithOnlyTheModelMapped) {
  MockUpstream up;
  auto f = Ferryd::start(native_pipeline(up), {}, {"FERRY_TEST_ANTHROPIC_KEY=sk-ant-test"});
  auto r = messages(*f, kNativeBody);
  ASSERT_EQ(r.status, 200) << r.body;
  json::Value sent;
  ASSERT_TRUE(json::parse(kNativeBody, sent, nullptr));
  EXPECT_EQ(up.stats()["last_request"]["body"], with_model(sent, "claude-upstream"));
}

TEST(AnthropicPassThrough, TheClientReadsTheUpstreamsBytesAsTheyCame) {
  MockUpstream up;
  auto f = Ferryd::start(native_pipeline(up), {}, {"FERRY_TEST_ANTHROPIC_KEY=sk-ant-test"});
  json::Value body;
  ASSERT_TRUE(json::parse(kNativeBody, body, nullptr));
  std::string upstream_body = json::dump(with_model(body, "claude-upstream"));
  HeaderList upstream_headers{{"anthropic-version", "2023-06-01"}, {"x-api-key", "sk-ant-test"}};

  // Whole answers: the same bytes the upstream gives any caller.
  auto direct = http_post(up.address(), "/v1/messages", upstream_body, upstream_headers);
  auto through = messages(*f, kNativeBody);
  ASSERT_EQ(through.status, 200) << through.body;
  EXPECT_EQ(without_message_ids(through.body), without_message_ids(direct.body));

  // Streams: every event, byte for byte.
  body["stream"] = true;
  upstream_body = json::dump(with_model(body, "claude-upstream"));
  auto direct_stream = http_post_sse(up.address(), "/v1/messages", upstream_body, upstream_headers);
  auto stream = http_post_sse(f->address(), "/v1/messages", json::dump(body), kAnthropic);
  ASSERT_FALSE(direct_stream.raw.empty());
  EXPECT_EQ(without_message_ids(stream.raw), without_message_ids(direct_stream.raw));
  // ... and the answer was still accounted from its translation.
  ASSERT_TRUE(f->log_line("frontend=anthropic status=200 model=\"m\"")) << f->output();
  EXPECT_TRUE(f->log_line("stream=true")) << f->output();
}

TEST(AnthropicPassThrough, MiddlewareThatEditsTheRequestGetsItsEditUpstream) {
  MockUpstream up;
  auto f = Ferryd::start(native_pipeline(up,
                                         "[middleware.guard]\nplugin = \"guardrails\"\napply_to = \"input\"\n"
                                         "pii = { email = \"redact\" }\n\n",
                                         "\"guard\""),
                         {}, {"FERRY_TEST_ANTHROPIC_KEY=sk-ant-test"});
  auto r = messages(*f, messages_body("m", "mail ann@example.org please"));
  ASSERT_EQ(r.status, 200) << r.body;
  std::string upstream_saw = json::dump(up.stats()["last_request"]["body"]);
  EXPECT_EQ(upstream_saw.find("ann@example.org"), std::string::npos) << upstream_saw;
  EXPECT_NE(upstream_saw.find("[REDACTED:email]"), std::string::npos) << upstream_saw;
}

TEST(AnthropicPassThrough, MiddlewareThatReadsChunksGetsTheTranslatedStream) {
  MockUpstream up;
  auto f =
      Ferryd::start(native_pipeline(up,
                                    "[middleware.guard]\nplugin = \"guardrails\"\napply_to = \"output\"\n"
                                    "pii = { card = \"redact\" }\n\n",
                                    "\"guard\""),
                    {}, {"FERRY_TEST_ANTHROPIC_KEY=sk-ant-test"});
  auto s = http_post_sse(f->address(), "/v1/messages",
                         messages_body("m", "card 4111 1111 1111 1111 ok", R"("stream":true)"), kAnthropic);
  auto got = read_stream(s);
  EXPECT_EQ(got.text, "mock reply: card [REDACTED:card] ok") << s.raw;
  EXPECT_EQ(s.raw.find("4111"), std::string::npos) << s.raw;
  EXPECT_EQ(got.types.back(), "message_stop") << s.raw;
}

}  // namespace
}  // namespace ferry::test
