// Middleware hooks: order, edits, short-circuits, PAUSE/resume, and the
// logging and defaults plugins.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// Pipeline "default" over an openai provider on `up`, with trace middleware a
// then b (tests/plugins/trace.cpp) and any extra middleware blocks.
std::string traced(const MockUpstream& up, const std::string& a_options = "", const std::string& more = "") {
  return "plugin_dirs = [\"" + test_plugin_dir() + "\"]\n\n" + openai_provider("up", up) +
         "[middleware.a]\nplugin = \"trace\"\nname = \"a\"\n" + a_options +
         "\n[middleware.b]\nplugin = \"trace\"\nname = \"b\"\n" + more +
         "\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\nmiddleware = [\"a\", \"b\"]\n";
}

TEST(Middleware, RequestHooksRunInOrderAndResponseHooksInReverse) {
  MockUpstream up;
  auto f = Ferryd::start(traced(up));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(up.stats()["last_request"]["body"]["x_trace"], json::Value::array({"a", "b"}));
  EXPECT_EQ(r.json()["x_trace"], json::Value::array({"b", "a"}));
}

TEST(Middleware, TagsTravelBetweenPluginsAndIntoTheAccessLog) {
  MockUpstream up;
  auto f = Ferryd::start(traced(up));
  auto r =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-request-id", "tagged-1"}});
  ASSERT_EQ(r.status, 200) << r.body;
  auto line = f->log_line("request_id=tagged-1 ");
  ASSERT_TRUE(line) << f->output();
  // b read the tag a set and extended it.
  EXPECT_NE(line->find(" tag.via=\"a,b\""), std::string::npos) << *line;
}

TEST(Middleware, ChunkHooksRunInReverseOnEveryChunk) {
  MockUpstream up;
  auto f = Ferryd::start(traced(up));
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "one two three", R"("stream":true)"));
  ASSERT_TRUE(s.ends_with_done()) << s.raw;
  auto chunks = s.chunks();
  ASSERT_GE(chunks.size(), 5u);
  for (const auto& c : chunks) EXPECT_EQ(c["x_trace"], json::Value::array({"b", "a"})) << c.dump();
  EXPECT_EQ(s.content(), "mock reply: one two three");
}

TEST(Middleware, OnCompleteRunsForStreamedAndFailedRequestsInReverseOrder) {
  MockUpstream up;
  auto f = Ferryd::start(traced(up));
  http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "x", R"("stream":true)"));
  auto b_line = f->log_line("trace b complete");
  auto a_line = f->log_line("trace a complete");
  ASSERT_TRUE(a_line && b_line) << f->output();
  EXPECT_NE(a_line->find("status=200 stream=true"), std::string::npos) << *a_line;
  EXPECT_LT(f->output().find("trace b complete"), f->output().find("trace a complete"));

  http_post(f->address(), "/v1/chat/completions", chat_body("m", "x [[fault:status=400]]"));
  EXPECT_TRUE(f->log_line("trace a complete status=400 stream=false")) << f->output();
}

TEST(Middleware, ARespondingHookAnswersWithoutCallingTheProvider) {
  MockUpstream up;
  auto f = Ferryd::start(traced(up, "respond_status = 403\n"));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 403);
  EXPECT_EQ(error_message(r), "refused by trace a");
  EXPECT_EQ(up.requests(), 0);
  // b never saw the request, so only a completes.
  EXPECT_TRUE(f->log_line("trace a complete status=403"));
  EXPECT_EQ(f->output().find("trace b complete"), std::string::npos);
}

TEST(Middleware, APausedHookResumesFromATimer) {
  MockUpstream up;
  auto f = Ferryd::start(traced(up, "pause_ms = 50\n"));
  for (int i = 0; i < 3; ++i) {
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.json()["x_trace"], json::Value::array({"b", "a"}));
  }
  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "y", R"("stream":true)"));
  EXPECT_TRUE(s.ends_with_done());
}

TEST(Middleware, DefaultsFillsMissingParametersAndAddsHeaders) {
  MockUpstream up;
  auto config = openai_provider("up", up) + R"(
[middleware.defaults]
params = { temperature = 0.2, max_tokens = 64 }
set = { user = "ferry-gateway" }
upstream_headers = { "x-team" = "ml-platform" }
response_headers = { "x-served-by" = "ferry" }

[pipelines.default]
models = ["m"]
providers = ["up"]
middleware = ["defaults"]
)";
  auto f = Ferryd::start(config);
  auto r = http_post(f->address(), "/v1/chat/completions",
                     chat_body("m", "x", R"("temperature":0.9,"user":"alice")"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.header("x-served-by"), "ferry");
  auto last = up.stats()["last_request"];
  EXPECT_EQ(last["body"]["temperature"], 0.9);  // the client's value wins over a default
  EXPECT_EQ(last["body"]["max_tokens"], 64);
  EXPECT_EQ(last["body"]["user"], "ferry-gateway");  // `set` always wins
  EXPECT_EQ(last["headers"]["x-team"], "ml-platform");

  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "x", R"("stream":true)"));
  EXPECT_EQ(s.header("x-served-by"), "ferry");
}

TEST(Middleware, EventsReachMiddlewareThatListens) {
  MockUpstream a, b;
  a.set_faults(R"({"status":503})");
  auto config =
      "plugin_dirs = [\"" + test_plugin_dir() + "\"]\n\n" +
      openai_provider("a", a, "[providers.a.breaker]\nfailures = 1\n") + openai_provider("b", b) +
      "[middleware.watch]\nplugin = \"trace\"\nname = \"watch\"\n\n"
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\nmiddleware = [\"watch\"]\n";
  auto f = Ferryd::start(config);
  ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_TRUE(f->log_line("trace watch saw provider_failed provider=a to= model=m")) << f->output();
  EXPECT_TRUE(f->log_line("trace watch saw breaker_opened provider=a to= model=m")) << f->output();
  EXPECT_TRUE(f->log_line("trace watch saw provider_switched provider=a to=b model=m")) << f->output();
  EXPECT_TRUE(f->log_line("event=provider_switched provider=a to=b model=m pipeline=default")) << f->output();
}

TEST(Middleware, LoggingWritesOneJsonLinePerRequest) {
  MockUpstream a, b;
  a.set_faults(R"({"status":503})");
  auto config =
      openai_provider("a", a) + openai_provider("b", b) +
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\nmiddleware = [\"logging\"]\n";
  auto f = Ferryd::start(config);
  http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "log this", R"("stream":true)"),
                {{"x-request-id", "log-me"}});
  auto line = f->log_line("\"request_id\":\"log-me\"");
  ASSERT_TRUE(line) << f->output();
  auto j = json::Value::parse(line->substr(line->find('{')));
  EXPECT_EQ(j["model"], "m");
  EXPECT_EQ(j["pipeline"], "default");
  EXPECT_EQ(j["provider"], "b");
  EXPECT_EQ(j["providers_tried"], json::Value::array({"a", "b"}));
  EXPECT_EQ(j["status"], 200);
  EXPECT_EQ(j["stream"], true);
  EXPECT_EQ(j["tokens_in"], 2);
  EXPECT_EQ(j["tokens_out"], 4);
  EXPECT_GT(j["latency_ms"].get<double>(), 0);
  EXPECT_GE(j["latency_ms"].get<double>(), j["ttfb_ms"].get<double>());
}

// A per-key limit without auth counts by the client's own Authorization
// header: rotating it escapes the limit. ferryd says so at start.
TEST(Middleware, APerKeyLimitWithoutAuthIsWarnedAboutAtStart) {
  const std::string limits =
      "[middleware.limits]\nplugin = \"rate-limit\"\nlimits = [{ per = \"key\", requests_per_minute = 2 "
      "}]\n\n"
      "[middleware.auth]\nplugin = \"auth\"\nkeys = [{ sha256 = \"" +
      std::string(64, 'a') + "\", owner = \"x\" }]\n\n[providers.mock]\nplugin = \"mock\"\n\n";
  auto open = Ferryd::start(limits +
                            "[pipelines.open]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = "
                            "[\"limits\"]\n");
  auto warning =
      open->log_line("[pipelines.open] middleware 'limits' (rate-limit) limits per key, but no auth");
  ASSERT_TRUE(warning) << open->output();
  // The warning is true: each new header is a new allowance.
  for (int i = 0; i < 5; ++i)
    EXPECT_EQ(http_post(open->address(), "/v1/chat/completions", chat_body("m", "hi"),
                        {{"authorization", "Bearer rotated-" + std::to_string(i)}})
                  .status,
              200);
  auto guarded = Ferryd::start(limits +
                               "[pipelines.guarded]\nmodels = [\"m\"]\nproviders = [\"mock\"]\n"
                               "middleware = [\"auth\", \"limits\"]\n");
  EXPECT_EQ(guarded->output().find("no auth plugin runs before it"), std::string::npos) << guarded->output();
}

}  // namespace
}  // namespace ferry::test
