// Upstreams that lie, stall, leak or answer garbage: the client gets a
// precise error (or the next provider's answer), nothing of the gateway's
// credentials, and ferryd stays up. The mock upstream's fault modes stand in
// for each kind of provider (tests/mock_upstream/README.md).
#include <fstream>
#include <sstream>
#include <thread>

#include "tests/integration/common.h"
#include "tests/support/raw_client.h"

namespace ferry::test {
namespace {

std::string two_providers(const MockUpstream& a, const MockUpstream& b, const std::string& a_extra = "",
                          const std::string& pipeline_extra = "") {
  return openai_provider("a", a, a_extra) + openai_provider("b", b) +
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\n" + pipeline_extra;
}

std::string one_provider(const MockUpstream& a, const std::string& a_extra = "",
                         const std::string& pipeline_extra = "") {
  return openai_provider("a", a, a_extra) + "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\"]\n" +
         pipeline_extra;
}

HttpResponse chat(const Ferryd& f, const std::string& text, const std::string& extra = "") {
  return http_post(f.address(), "/v1/chat/completions", chat_body("m", text, extra));
}

// Each upstream status goes where its error class says: a client error back
// to the client (another provider would refuse it too), a provider error to
// the next provider. A mutant that failed over on 404 or 422 survived the
// whole suite before this test.
TEST(ErrorClasses, EachUpstreamStatusTakesItsClassesAction) {
  MockUpstream a, b;
  // No breaker: a fails on purpose every time, and must still be asked.
  auto f = Ferryd::start(two_providers(a, b, "breaker = { enabled = false }\n"));
  for (int status : {400, 404, 422}) {
    a.reset();
    b.reset();
    a.set_faults(R"({"status":)" + std::to_string(status) + "}");
    auto r = chat(*f, "hi");
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(b.requests(), 0) << status << " must not fail over";
  }
  for (int status : {401, 403, 408, 429, 500, 503}) {
    a.reset();
    b.reset();
    a.set_faults(R"({"status":)" + std::to_string(status) + R"(,"retry_after":0})");
    auto r = chat(*f, "hi");
    EXPECT_EQ(r.status, 200) << status << ": " << r.body;
    EXPECT_EQ(a.requests(), 1) << status;
    EXPECT_EQ(b.requests(), 1) << status << " must fail over";
  }
}

TEST(ErrorClasses, AnUpstreamRefusingTheGatewaysKeyIs502NotTheClientsFault) {
  MockUpstream a;
  auto f = Ferryd::start(one_provider(a));
  a.set_faults(R"({"status":401})");
  auto r = chat(*f, "hi");
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(error_message(r).find("upstream rejected the configured credentials (HTTP 401)"),
            std::string::npos)
      << r.body;
}

// An upstream 401 whose body echoes the Authorization header put the provider
// key in the client's error, the access log, the event log, the logging
// plugin and the audit log.
TEST(UpstreamSecrets, ACredentialAnUpstreamEchoesReachesNoClientAndNoLog) {
  const std::string key = "sk-live-0123456789abcdefXYZ";
  const std::string odd_key = "opaque-token-98765-zyx";  // not key-shaped: known only by value
  MockUpstream a, b;
  TempDir dir;
  std::string audit = dir.path() + "/audit.jsonl";
  auto f = Ferryd::start(
      "[log]\nlevel = \"info\"\n\n" + openai_provider("a", a, "api_key_env = \"FERRY_TEST_KEY_A\"\n") +
          openai_provider("b", b, "api_key_env = \"FERRY_TEST_KEY_B\"\n") +
          "[middleware.audit]\nplugin = \"audit\"\npath = \"" + audit +
          "\"\nbodies = true\n\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", "
          "\"b\"]\nmiddleware = [\"logging\", \"audit\"]\n",
      {}, {"FERRY_TEST_KEY_A=" + key, "FERRY_TEST_KEY_B=" + odd_key});
  a.set_faults(R"({"status":401,"echo_auth":true})");
  b.set_faults(R"({"status":403,"echo_auth":true})");
  // The client's own key is in its header and, pasted by mistake, in its prompt.
  auto r = http_post(f->address(), "/v1/chat/completions",
                     chat_body("m", "my gateway key is fk-client-0123456789abcdef0123, keep it"),
                     {{"authorization", "Bearer fk-client-0123456789abcdef0123"}});
  EXPECT_EQ(r.status, 502) << r.body;
  // The echo did reach ferryd (so the test proves something)...
  EXPECT_NE(a.stats()["last_request"]["headers"].value("authorization", "").find(key), std::string::npos);
  // ...but went no further.
  EXPECT_EQ(r.body.find(key), std::string::npos) << r.body;
  EXPECT_EQ(r.body.find(odd_key), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("[REDACTED]"), std::string::npos) << r.body;
  ASSERT_TRUE(f->log_line("status=502")) << f->output();
  ASSERT_TRUE(f->log_line("\"status\":502")) << f->output();  // the logging plugin's line
  EXPECT_EQ(f->stop(), 0);
  std::string out = f->output();
  EXPECT_EQ(out.find(key), std::string::npos) << out;
  EXPECT_EQ(out.find(odd_key), std::string::npos) << out;
  EXPECT_NE(out.find("event=provider_failed"), std::string::npos) << out;
  std::stringstream lines;
  lines << std::ifstream(audit).rdbuf();
  ASSERT_NE(lines.str().find("\"error\""), std::string::npos) << lines.str();
  EXPECT_EQ(lines.str().find(key), std::string::npos) << lines.str();
  EXPECT_EQ(lines.str().find(odd_key), std::string::npos) << lines.str();
  EXPECT_EQ(lines.str().find("fk-client-0123456789abcdef0123"), std::string::npos) << lines.str();
  EXPECT_NE(lines.str().find("my gateway key is fk-[REDACTED]"), std::string::npos) << lines.str();
}

// Bytes after a complete response were served as the next client's answer
// on the pooled connection.
// One worker: one pool, so the next request would take that connection.
constexpr const char* kOneWorker = "[server]\nthreads = 1\n\n";

TEST(UpstreamPool, BytesAfterAResponseAreNeverReadAsTheNextAnswer) {
  MockUpstream a;
  auto f = Ferryd::start(kOneWorker + one_provider(a));
  auto first = chat(*f, "first [[fault:extra_response]]");
  ASSERT_EQ(first.status, 200) << first.body;
  EXPECT_EQ(first.json()["choices"][0]["message"]["content"], "mock reply: first");
  for (int i = 0; i < 3; ++i) {
    auto next = chat(*f, "next");
    EXPECT_EQ(next.status, 200) << next.body;
    EXPECT_EQ(next.json()["choices"][0]["message"]["content"], "mock reply: next") << next.body;
  }
}

TEST(UpstreamPool, BytesThatArriveWhileAConnectionIdlesRetireIt) {
  MockUpstream a;
  auto f = Ferryd::start(kOneWorker + one_provider(a));
  auto first = chat(*f, "first [[fault:extra_response_delay_ms=100]]");
  ASSERT_EQ(first.status, 200) << first.body;
  // Time must pass for the junk to arrive while the connection sits in the
  // pool: this waits for that, not for an answer.
  std::this_thread::sleep_for(std::chrono::milliseconds(400));
  auto next = chat(*f, "next");
  EXPECT_EQ(next.status, 200) << next.body;
  EXPECT_EQ(next.json()["choices"][0]["message"]["content"], "mock reply: next") << next.body;
}

// Garbage that parses or looks like JSON to a lenient reader: each is a
// broken upstream (502, or the next provider's answer), never a crash.
TEST(UpstreamGarbage, EachBrokenAnswerIs502AndTheNextProviderServes) {
  const std::pair<std::string, std::string> cases[] = {
      {"gzip", "Content-Encoding: gzip, which ferryd did not ask for"},
      {"invalid_utf8", "with a body that is not a JSON object"},
      {"nul_suffix", "with a body that is not a JSON object"},
      {"usage_overflow", "with a body that is not a JSON object"},
  };
  MockUpstream a, b;
  auto single = Ferryd::start(one_provider(a));
  auto pair = Ferryd::start(two_providers(a, b));
  for (const auto& [fault, message] : cases) {
    auto r = chat(*single, "hi [[fault:" + fault + "]]");
    EXPECT_EQ(r.status, 502) << fault << ": " << r.body;
    EXPECT_NE(error_message(r).find(message), std::string::npos) << fault << ": " << r.body;
    a.set_faults("{\"" + fault + "\":true,\"count\":1}");
    auto served = chat(*pair, "hi");
    EXPECT_EQ(served.status, 200) << fault << ": " << served.body;
    EXPECT_EQ(served.json()["choices"][0]["message"]["content"], "mock reply: hi") << fault;
  }
  expect_healthy(single->address());
  expect_healthy(pair->address());
}

TEST(UpstreamGarbage, AStreamedUsageNumberADoubleCannotHoldEndsTheStreamCleanly) {
  MockUpstream a;
  auto f = Ferryd::start(one_provider(a));
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "one two [[fault:usage_overflow]]", R"("stream":true)"));
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), "mock reply: one two");
  EXPECT_NE(s.raw.find("stream_interrupted"), std::string::npos) << s.raw;
  expect_healthy(f->address());
}

// An upstream that drips a byte every 100 ms never trips the 5 s read
// timeout; the attempt's total timeout_ms ends it.
TEST(UpstreamStall, ADripFeedingUpstreamIsCutByTheAttemptsTotalTimeout) {
  MockUpstream a;
  auto f = Ferryd::start(one_provider(a, "read_timeout_ms = 5000\ntimeout_ms = 800\n"));
  auto r = chat(*f, "hi [[fault:drip_ms=100]]");
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_NE(error_message(r).find("total timeout of 800 ms"), std::string::npos) << r.body;
  // A stream too: nothing reached the client yet, so the answer is the error.
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "hi there [[fault:drip_ms=100]]", R"("stream":true)"));
  EXPECT_EQ(s.status, 504) << s.raw;
  EXPECT_NE(s.raw.find("total timeout of 800 ms"), std::string::npos) << s.raw;
}

// A client that hangs up while its request waits on a silent upstream: the
// request is cancelled at once (the upstream read would wait 60 s).
TEST(ClientGone, ARequestWhoseClientLeftIsCancelledWhileItWaitsUpstream) {
  MockUpstream a;
  auto f = Ferryd::start(one_provider(a));
  for (const char* extra : {"", "\"stream\":true"}) {
    std::string body = chat_body("m", "wait [[fault:hang]]", extra);
    {
      RawClient c(f->address());
      ASSERT_TRUE(
          c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                 "x-request-id: gone-" +
                 std::string(*extra ? "stream" : "plain") +
                 "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body));
      ASSERT_TRUE(eventually([&] { return a.requests() >= (*extra ? 2 : 1); }));
    }  // the client closes its connection here
    auto line = f->log_line(std::string("request_id=gone-") + (*extra ? "stream" : "plain"));
    ASSERT_TRUE(line) << f->output();
    EXPECT_NE(line->find("status=499"), std::string::npos) << *line;
  }
  EXPECT_EQ(f->stop(), 0);
}

// An `event: error` in a stream is an error, not a chunk to pass on; before
// the first byte it fails over.
TEST(UpstreamStreamErrors, AnErrorEventEndsTheStreamOrFailsOverBeforeTheFirstByte) {
  MockUpstream a, b;
  auto f = Ferryd::start(two_providers(a, b));
  for (const char* fault : {"event_error", "typed_error"}) {
    a.reset();
    b.reset();
    a.set_faults(std::string("{\"") + fault + "\":2}");
    auto s = http_post_sse(f->address(), "/v1/chat/completions",
                           chat_body("m", "one two three four five", R"("stream":true)"));
    EXPECT_TRUE(s.ends_with_done()) << s.raw;
    EXPECT_EQ(s.content(), "mock reply:") << fault << ": " << s.raw;  // nothing after the error
    EXPECT_NE(s.raw.find("verloaded"), std::string::npos) << fault << ": " << s.raw;
    EXPECT_EQ(b.requests(), 0);
  }
  for (const char* field : {"event_error", "typed_error"}) {
    a.reset();
    b.reset();
    a.set_faults(std::string("{\"") + field + "\":\"start\"}");
    auto s =
        http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "one two", R"("stream":true)"));
    EXPECT_TRUE(s.ends_with_done()) << s.raw;
    EXPECT_EQ(s.content(), "mock reply: one two") << field << ": " << s.raw;
    EXPECT_EQ(b.requests(), 1) << field;
  }
}

// What held up, kept: an upstream stream event past the SSE parser's 8 MiB
// bound ends the stream with an error event; nothing is buffered past it.
TEST(UpstreamGarbage, AStreamEventLargerThanTheBoundEndsTheStreamNotTheDaemon) {
  MockUpstream up({"--words", "1100000"});  // ≈ 9 MB of reply...
  auto f = Ferryd::start(one_provider(up));
  auto s = http_post_sse(
      f->address(), "/v1/chat/completions",
      chat_body("m", "hi [[fault:big_chunks=2000000]]", R"("stream":true)"));  // ...in one event
  EXPECT_TRUE(s.ends_with_done()) << s.raw.substr(0, 300);
  EXPECT_NE(s.raw.find("sent an oversized stream event"), std::string::npos) << s.raw.substr(0, 300);
  expect_healthy(f->address());
}

}  // namespace
}  // namespace ferry::test
