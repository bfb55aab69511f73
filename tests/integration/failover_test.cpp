// Failover across providers: which errors move on to the next candidate,
// which go straight back to the client, and what a stream does when its
// upstream fails after the first byte.
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

// Pipeline "default" (model "m") over providers a and b, each an openai
// adapter on its own mock upstream.
std::string two_providers(const MockUpstream& a, const MockUpstream& b,
                          const std::string& router = "priority", const std::string& a_extra = "") {
  return openai_provider("a", a, a_extra) + openai_provider("b", b) +
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\nrouter = \"" + router + "\"\n";
}

std::string access_line(Ferryd& f, const std::string& request_id) {
  return f.log_line("access request_id=" + request_id + " ").value_or("");
}

TEST(Failover, MovesToTheNextProviderOn503AndLogsBoth) {
  MockUpstream a, b;
  a.set_faults(R"({"status":503})");
  auto f = Ferryd::start(two_providers(a, b));
  auto r =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"), {{"x-request-id", "fo-503"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "mock reply: hi");
  EXPECT_EQ(a.requests(), 1);
  EXPECT_EQ(b.requests(), 1);
  auto line = access_line(*f, "fo-503");
  EXPECT_NE(line.find("provider=b tried=a,b attempts=2"), std::string::npos) << line;
}

TEST(Failover, MovesOnAfter429ConnectionRefusedAndTimeouts) {
  MockUpstream b;
  {
    MockUpstream a;
    a.set_faults(R"({"status":429})");
    auto f = Ferryd::start(two_providers(a, b));
    EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  }
  {
    MockUpstream a;
    a.kill();  // nothing listens on its port any more
    auto f = Ferryd::start(two_providers(a, b));
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
    EXPECT_EQ(r.status, 200) << r.body;
  }
  {
    MockUpstream a;
    a.set_faults(R"({"delay_ms":3000})");
    auto f = Ferryd::start(two_providers(a, b, "priority", "read_timeout_ms = 200\n"));
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"),
                       {{"x-request-id", "fo-timeout"}});
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_NE(access_line(*f, "fo-timeout").find("tried=a,b"), std::string::npos);
  }
}

TEST(Failover, NeverFailsOverOnAClientError) {
  MockUpstream a, b;
  a.set_faults(R"({"status":400})");
  auto f = Ferryd::start(two_providers(a, b));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "bad"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(error_message(r).find("upstream HTTP 400"), std::string::npos) << r.body;
  EXPECT_EQ(b.requests(), 0);
}

TEST(Failover, ReportsEveryProviderWhenAllFail) {
  MockUpstream a, b;
  a.set_faults(R"({"status":500})");
  b.set_faults(R"({"status":503})");
  auto f = Ferryd::start(two_providers(a, b));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 502) << r.body;
  auto msg = error_message(r);
  EXPECT_NE(msg.find("all 2 attempts failed"), std::string::npos) << msg;
  EXPECT_NE(msg.find("provider 'a': upstream HTTP 500"), std::string::npos) << msg;
  EXPECT_NE(msg.find("provider 'b': upstream HTTP 503"), std::string::npos) << msg;
  EXPECT_EQ(r.json()["error"]["code"], "all_providers_failed");
}

TEST(Failover, ReturnsRateLimitWithRetryAfterWhenEveryProviderIsLimited) {
  MockUpstream a, b;
  a.set_faults(R"({"status":429,"retry_after":7})");
  b.set_faults(R"({"status":429,"retry_after":7})");
  auto f = Ferryd::start(two_providers(a, b));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 429) << r.body;
  EXPECT_EQ(r.header("retry-after"), "7");
}

TEST(Failover, AStreamFailsOverWhileNothingWasSent) {
  MockUpstream a, b;
  a.set_faults(R"({"reset_after":0})");
  auto f = Ferryd::start(two_providers(a, b));
  auto s = http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "stream", R"("stream":true)"));
  ASSERT_EQ(s.status, 200) << s.raw;
  EXPECT_TRUE(s.ends_with_done());
  EXPECT_EQ(s.content(), "mock reply: stream");
  EXPECT_EQ(a.requests(), 1);
  EXPECT_EQ(b.requests(), 1);
}

TEST(Failover, AStreamThatBreaksMidwayEndsWithAnErrorEventAndDone) {
  MockUpstream a, b;
  auto f = Ferryd::start(two_providers(a, b));
  auto s =
      http_post_sse(f->address(), "/v1/chat/completions",
                    chat_body("m", "one two three four five [[fault:reset_after=3]]", R"("stream":true)"),
                    {{"x-request-id", "mid-stream"}});
  ASSERT_EQ(s.status, 200) << s.raw;
  ASSERT_GE(s.events.size(), 3u) << s.raw;
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  auto chunks = s.chunks();
  const auto& last = chunks.back();
  ASSERT_TRUE(last.contains("error")) << last.dump();
  EXPECT_EQ(last["error"]["code"], "stream_interrupted");
  EXPECT_NE(last["error"]["message"].get<std::string>().find("provider 'a'"), std::string::npos);
  // Content from one provider only: no failover once bytes reached the client.
  EXPECT_EQ(b.requests(), 0);
  EXPECT_TRUE(s.content().starts_with("mock reply:")) << s.content();
  auto line = access_line(*f, "mid-stream");
  EXPECT_NE(line.find("error="), std::string::npos) << line;
  expect_healthy(f->address());
}

TEST(Failover, AMalformedEventMidStreamIsReportedNotForwarded) {
  MockUpstream a;
  auto f =
      Ferryd::start(openai_provider("a", a) + "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\"]\n");
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "alpha beta gamma [[fault:malformed]]", R"("stream":true)"));
  ASSERT_EQ(s.status, 200) << s.raw;
  EXPECT_EQ(s.raw.find("this is not json"), std::string::npos) << s.raw;
  auto chunks = s.chunks();
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back()["error"]["code"], "stream_interrupted") << s.raw;
  EXPECT_NE(chunks.back()["error"]["message"].get<std::string>().find("not a JSON object"),
            std::string::npos);
  EXPECT_TRUE(s.ends_with_done());
}

TEST(Failover, AnUpstreamErrorEventMidStreamIsReported) {
  MockUpstream a;
  auto f =
      Ferryd::start(openai_provider("a", a) + "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\"]\n");
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "alpha beta [[fault:stream_error]]", R"("stream":true)"));
  auto chunks = s.chunks();
  ASSERT_FALSE(chunks.empty()) << s.raw;
  EXPECT_NE(chunks.back()["error"]["message"].get<std::string>().find("upstream exploded"), std::string::npos)
      << s.raw;
  EXPECT_TRUE(s.ends_with_done());
}

TEST(Routing, AClientCanPinAProvider) {
  MockUpstream a, b;
  auto f = Ferryd::start(two_providers(a, b));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-ferry-provider", "b"}});
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(a.requests(), 0);
  EXPECT_EQ(b.requests(), 1);
  auto unknown =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-ferry-provider", "zzz"}});
  EXPECT_EQ(unknown.status, 404);
  EXPECT_NE(error_message(unknown).find("provider 'zzz'"), std::string::npos);
}

TEST(Routing, RoundRobinAlternatesBetweenProviders) {
  MockUpstream a, b;
  auto f = Ferryd::start(two_providers(a, b, "round-robin"));
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(a.requests(), 5);
  EXPECT_EQ(b.requests(), 5);
}

TEST(Routing, PriorityDemotesAProviderThatKeepsFailing) {
  MockUpstream a, b;
  a.set_faults(R"({"status":500})");
  auto f = Ferryd::start(two_providers(a, b));
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  // After 5 consecutive failures a is tried last, so the later requests skip it.
  EXPECT_EQ(a.requests(), 5);
  EXPECT_EQ(b.requests(), 10);
  auto health = http_get(f->address(), "/health").json();
  EXPECT_EQ(health["providers"][0]["healthy"], false);
}

}  // namespace
}  // namespace ferry::test
