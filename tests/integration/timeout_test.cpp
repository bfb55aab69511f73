// The timeout middleware through the real ferryd: per-model deadlines answer
// 504 deadline_exceeded when the provider is slower, and never lengthen a
// deadline the client asked for.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string timed(const std::string& options) {
  return "[log]\nlevel = \"info\"\n\n[providers.mock]\nplugin = \"mock\"\nlatency_ms = 300\n\n"
         "[middleware.timeout]\nplugin = \"timeout\"\n" +
         options +
         "\n[pipelines.default]\nmodels = [\"fast-*\", \"patient\"]\nproviders = [\"mock\"]\n"
         "middleware = [\"timeout\"]\n";
}

TEST(Timeout, PerModelDeadlinesCutSlowAnswers) {
  auto f = Ferryd::start(timed("deadline_ms = 100\nmodels = { patient = 2000 }\n"));
  auto cut = http_post(f->address(), "/v1/chat/completions", chat_body("fast-1", "hi"));
  EXPECT_EQ(cut.status, 504) << cut.body;
  EXPECT_EQ(cut.json()["error"]["code"], "deadline_exceeded");
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("patient", "hi")).status, 200);
  // A client may shorten a deadline, never lengthen it.
  auto shorter = http_post(f->address(), "/v1/chat/completions", chat_body("patient", "hi"),
                           {{"x-ferry-deadline-ms", "50"}});
  EXPECT_EQ(shorter.status, 504);
}

TEST(Timeout, StreamsHaveTheirOwnDeadline) {
  auto f = Ferryd::start(timed("deadline_ms = 2000\nstream_deadline_ms = 100\n"));
  auto stream =
      http_post_sse(f->address(), "/v1/chat/completions", chat_body("fast-1", "hi", R"("stream":true)"));
  EXPECT_EQ(stream.status, 504) << stream.raw;
  EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("fast-1", "hi")).status, 200);
}

// Regression: an in-process provider that outlived its read timeout made
// ferryd abort (a g++ 12 coroutine temporary freed too early).
TEST(Timeout, AnInProcessProviderTimingOutAnswers504AndFerrydStaysUp) {
  auto f = Ferryd::start(
      "[providers.slow]\nplugin = \"mock\"\nlatency_ms = 500\nread_timeout_ms = 50\n\n"
      "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"slow\"]\n");
  for (int i = 0; i < 3; ++i) {
    auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"));
    EXPECT_EQ(r.status, 504) << r.body;
  }
  EXPECT_EQ(http_get(f->address(), "/health").status, 200);
}

}  // namespace
}  // namespace ferry::test
