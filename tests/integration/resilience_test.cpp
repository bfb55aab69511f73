// Per-class error handling, retries with backoff and Retry-After, deadlines.
#include <chrono>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

using Clock = std::chrono::steady_clock;

std::string two(const MockUpstream& a, const MockUpstream& b, const std::string& pipeline_extra) {
  return openai_provider("a", a) + openai_provider("b", b) +
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\n" + pipeline_extra + "\n";
}

int64_t ms_since(Clock::time_point t) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t).count();
}

TEST(Retry, RetriesTheSameProviderThenFailsOver) {
  MockUpstream a, b;
  a.set_faults(R"({"status":500})");
  auto f = Ferryd::start(two(a, b,
                             "[pipelines.default.retry]\nmax_retries = 2\nbackoff_base_ms = 20\n"
                             "[pipelines.default.on_error]\nserver_error = \"retry\""));
  auto r =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-request-id", "retry-1"}});
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(a.requests(), 3);
  EXPECT_EQ(b.requests(), 1);
  auto line = f->log_line("access request_id=retry-1 ");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("provider=b tried=a,b attempts=4 retries=2"), std::string::npos) << *line;
}

TEST(Retry, WaitsForRetryAfterBeforeRetrying) {
  MockUpstream a, b;
  a.set_faults(R"({"status":429,"retry_after":1,"count":1})");
  auto f = Ferryd::start(two(a, b, "[pipelines.default.on_error]\nrate_limited = \"retry\""));
  auto start = Clock::now();
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_GE(ms_since(start), 1000);  // the upstream asked for a second
  EXPECT_EQ(a.requests(), 2);
  EXPECT_EQ(b.requests(), 0);
}

TEST(Retry, FailsOverAtOnceWhenRetryAfterIsLongerThanAllowed) {
  MockUpstream a, b;
  a.set_faults(R"({"status":429,"retry_after":30})");
  auto f = Ferryd::start(two(a, b,
                             "[pipelines.default.retry]\nmax_retry_after_ms = 1000\n"
                             "[pipelines.default.on_error]\nrate_limited = \"retry\""));
  auto start = Clock::now();
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 200) << r.body;
  EXPECT_LT(ms_since(start), 5000);
  EXPECT_EQ(a.requests(), 1);
  EXPECT_EQ(b.requests(), 1);
}

TEST(Retry, ACustomPolicyCanFailOverOnClientErrors) {
  MockUpstream a, b;
  a.set_faults(R"({"status":400})");
  auto f = Ferryd::start(two(a, b, "[pipelines.default.on_error]\nclient_error = \"failover\""));
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(b.requests(), 1);
}

TEST(Retry, ACustomPolicyCanReturnServerErrorsToTheClient) {
  MockUpstream a, b;
  a.set_faults(R"({"status":503})");
  auto f = Ferryd::start(two(a, b, "[pipelines.default.on_error]\nserver_error = \"return\""));
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 503);
  EXPECT_EQ(b.requests(), 0);
}

TEST(Retry, RejectsAnUnknownActionAtItsPosition) {
  MockUpstream a, b;
  auto r = ferryd_refusing(two(a, b, "[pipelines.default.on_error]\ntimeout = \"panic\""));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find(
                "ferry.toml:13:11: timeout in [pipelines.default] on_error must be \"retry\", \"failover\" "
                "or \"return\", not \"panic\""),
            std::string::npos)
      << r.output;
}

TEST(Deadline, TheClientsDeadlineEndsTheRequestWith504) {
  MockUpstream a, b;
  a.set_faults(R"({"delay_ms":3000})");
  b.set_faults(R"({"delay_ms":3000})");
  auto f = Ferryd::start(two(a, b, ""));
  auto start = Clock::now();
  auto r =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-ferry-deadline-ms", "300"}});
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "deadline_exceeded");
  EXPECT_NE(error_message(r).find("deadline of 300 ms"), std::string::npos) << r.body;
  EXPECT_LT(ms_since(start), 2000);
  EXPECT_EQ(b.requests(), 0);  // no time left to try b
}

TEST(Deadline, AClientCannotExtendThePipelinesDeadline) {
  MockUpstream a, b;
  a.set_faults(R"({"delay_ms":3000})");
  auto f = Ferryd::start(two(a, b, "[pipelines.default.retry]\ndeadline_ms = 300"));
  auto start = Clock::now();
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"),
                     {{"x-ferry-deadline-ms", "60000"}});
  EXPECT_EQ(r.status, 504) << r.body;
  EXPECT_LT(ms_since(start), 2000);
}

TEST(Deadline, DoesNotCutAStreamThatHasStarted) {
  MockUpstream a;
  auto f = Ferryd::start(openai_provider("a", a) +
                         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\"]\n"
                         "[pipelines.default.retry]\ndeadline_ms = 300\n");
  auto s = http_post_sse(
      f->address(), "/v1/chat/completions",
      chat_body("m", "one two three four five six [[fault:chunk_delay_ms=100]]", R"("stream":true)"));
  EXPECT_EQ(s.status, 200);
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), "mock reply: one two three four five six");
}

TEST(Deadline, RejectsAMalformedDeadlineHeader) {
  MockUpstream a, b;
  auto f = Ferryd::start(two(a, b, ""));
  auto r =
      http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"), {{"x-ferry-deadline-ms", "soon"}});
  EXPECT_EQ(r.status, 400);
  EXPECT_EQ(r.json()["error"]["code"], "invalid_deadline");
}

// Context-length errors move only to providers with a larger context_window.
std::string windows(const std::string& small_window) {
  std::string fail =
      "error_status = 400\nerror_message = \"This model's maximum context length is 8192 tokens\"\n";
  return "[providers.small]\nplugin = \"mock\"\nreply_prefix = \"small:\"\n" + fail + small_window +
         "\n[providers.smaller]\nplugin = \"mock\"\nreply_prefix = \"smaller:\"\nattributes = { "
         "context_window = 4096 }\n"
         "\n[providers.large]\nplugin = \"mock\"\nreply_prefix = \"large:\"\nattributes = { context_window = "
         "32768 }\n"
         "\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"small\", \"smaller\", \"large\"]\n";
}

TEST(ContextLength, FailsOverOnlyToALargerContextWindow) {
  auto f = Ferryd::start(windows("attributes = { context_window = 8192 }"));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "a long prompt"),
                     {{"x-request-id", "ctx"}});
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "large: a long prompt");
  auto line = f->log_line("access request_id=ctx ");
  ASSERT_TRUE(line);
  EXPECT_NE(line->find("tried=small,large"), std::string::npos) << *line;
}

TEST(ContextLength, ReturnsTheErrorWhenNoWindowIsKnown) {
  auto f = Ferryd::start(windows(""));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "a long prompt"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(error_message(r).find("maximum context length"), std::string::npos) << r.body;
}

}  // namespace
}  // namespace ferry::test

namespace ferry::test {
namespace {

TEST(StreamHold, AFailureWithinTheHeldChunksStillFailsOver) {
  MockUpstream a, b;
  // a breaks after 3 events: role chunk + 2 words, all still held back.
  a.set_faults(R"({"reset_after":3})");
  auto f = Ferryd::start(two(a, b, "[pipelines.default.retry]\nstream_hold_chunks = 5"));
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "one two three four five six", R"("stream":true)"));
  ASSERT_EQ(s.status, 200) << s.raw;
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), "mock reply: one two three four five six");  // b's whole answer, nothing of a's
  EXPECT_EQ(b.requests(), 1);
  for (const auto& c : s.chunks()) EXPECT_FALSE(c.contains("error")) << c.dump();
}

TEST(StreamHold, WithoutHoldingTheSameFailureEndsTheStream) {
  MockUpstream a, b;
  a.set_faults(R"({"reset_after":3})");
  auto f = Ferryd::start(two(a, b, ""));
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "one two three four five six", R"("stream":true)"));
  auto chunks = s.chunks();
  ASSERT_FALSE(chunks.empty());
  EXPECT_EQ(chunks.back()["error"]["code"], "stream_interrupted");
  EXPECT_EQ(b.requests(), 0);
}

}  // namespace
}  // namespace ferry::test
