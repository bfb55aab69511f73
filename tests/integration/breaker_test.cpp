// Circuit breakers end to end: a failing upstream is skipped while its circuit
// is open, probed after the cooldown, and taken back when it recovers.
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string with_breaker(const MockUpstream& a, const MockUpstream& b, const std::string& breaker) {
  return openai_provider("a", a, "[providers.a.breaker]\n" + breaker + "\n") + openai_provider("b", b) +
         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\n";
}

TEST(Breaker, OpensSkipsProbesAndCloses) {
  MockUpstream a, b;
  a.set_faults(R"({"status":500})");
  auto f = Ferryd::start(with_breaker(a, b, "failures = 3\ncooldown_ms = 300"));
  for (int i = 0; i < 10; ++i)
    ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  // Three failures opened the circuit; the other seven went straight to b.
  EXPECT_EQ(a.requests(), 3);
  EXPECT_EQ(b.requests(), 10);
  EXPECT_TRUE(f->log_line("event=breaker_opened provider=a model=m"));
  auto health = http_get(f->address(), "/health").json();
  EXPECT_EQ(health["providers"][0]["models"]["m"]["state"], "open") << health.dump();
  EXPECT_EQ(health["providers"][0]["healthy"], false);

  // After the cooldown one probe goes to a; it fails, so the circuit opens again.
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(a.requests(), 4);
  ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(a.requests(), 4);

  // a recovers: the next probe succeeds and closes the circuit.
  a.set_faults("{}");
  std::this_thread::sleep_for(std::chrono::milliseconds(350));
  ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(a.requests(), 5);
  // The probe's outcome is recorded just after its answer went out: a request
  // racing it would still see the probe in flight and go to b.
  EXPECT_TRUE(f->log_line("event=breaker_closed provider=a model=m"));
  for (int i = 0; i < 4; ++i)
    ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(a.requests(), 9);
  EXPECT_EQ(http_get(f->address(), "/health").json()["providers"][0]["models"]["m"]["state"], "closed");
}

TEST(Breaker, OpensOnTheErrorRateOfItsWindow) {
  MockUpstream a, b;
  // Every other request fails: never 3 in a row, but half of the window.
  auto config =
      "[providers.a]\nplugin = \"mock\"\nerror_status = 500\nerror_rate = 0.5\n"
      "[providers.a.breaker]\nfailures = 100\nerror_rate = 0.5\nmin_requests = 10\n" +
      openai_provider("b", b) + "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\n";
  auto f = Ferryd::start(config);
  for (int i = 0; i < 30; ++i)
    ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_TRUE(f->log_line("event=breaker_opened provider=a"));
  // Once open, a gets nothing: b has taken at least the last 20.
  EXPECT_GE(b.requests(), 20);
}

TEST(Breaker, AnswersServiceUnavailableWhenEveryCircuitIsOpen) {
  MockUpstream a, b;
  a.set_faults(R"({"status":503})");
  b.set_faults(R"({"status":503})");
  auto f = Ferryd::start(openai_provider("a", a, "[providers.a.breaker]\nfailures = 2\n") +
                         openai_provider("b", b, "[providers.b.breaker]\nfailures = 2\n") +
                         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"b\"]\n");
  for (int i = 0; i < 2; ++i) http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 503) << r.body;
  EXPECT_EQ(r.json()["error"]["code"], "circuit_open");
  EXPECT_NE(error_message(r).find("a, b"), std::string::npos) << r.body;
  EXPECT_EQ(r.header("retry-after"), "1");
  EXPECT_EQ(a.requests(), 2);
  EXPECT_EQ(b.requests(), 2);
}

TEST(Breaker, ClientErrorsDoNotOpenTheCircuit) {
  MockUpstream a, b;
  a.set_faults(R"({"status":400})");
  auto f = Ferryd::start(with_breaker(a, b, "failures = 2"));
  for (int i = 0; i < 6; ++i)
    EXPECT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 400);
  EXPECT_EQ(a.requests(), 6);
  EXPECT_EQ(b.requests(), 0);
}

TEST(Breaker, RejectsBadSettingsWithTheirPosition) {
  MockUpstream a, b;
  auto r = ferryd_refusing(with_breaker(a, b, "error_rate = 2\nfailure = 3"));
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(
      r.output.find("ferry.toml:5:14: error_rate in [providers.a] breaker must be above 0 and at most 1"),
      std::string::npos)
      << r.output;
  EXPECT_NE(r.output.find("ferry.toml:6:1: unknown key 'failure' in [providers.a] breaker"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ferry::test
