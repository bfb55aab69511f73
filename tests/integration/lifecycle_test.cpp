// Start-up, command line and graceful shutdown of the ferryd process.
#include <signal.h>

#include <future>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

TEST(Lifecycle, SigtermLetsAnInFlightStreamFinishThenExitsZero) {
  // About 1.5 s of streaming: 15 words at 10 tokens per second.
  auto f = Ferryd::start(mock_pipeline("tokens_per_second = 10"));
  std::promise<void> first_chunk;
  bool signalled = false;
  auto pending = std::async(std::launch::async, [&] {
    return http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "a b c d e f g h i j k l", R"("stream":true)"), {},
                         [&](std::string_view) {
                           if (!signalled) {
                             signalled = true;
                             first_chunk.set_value();
                           }
                           return true;
                         });
  });
  first_chunk.get_future().wait();
  f->process().signal(SIGTERM);
  EXPECT_TRUE(f->log_line("draining in-flight requests"));
  auto s = pending.get();
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(s.content(), "Ferry mock reply: a b c d e f g h i j k l");
  EXPECT_EQ(f->process().wait_exit(std::chrono::seconds(10)), 0) << f->output();
  EXPECT_NE(f->output().find("drained; exiting"), std::string::npos) << f->output();
}

TEST(Lifecycle, SigintAlsoExitsZeroWhenIdle) {
  auto f = Ferryd::start(mock_pipeline());
  f->process().signal(SIGINT);
  EXPECT_EQ(f->process().wait_exit(), 0) << f->output();
}

// The old test connected after the process had exited, so it could not fail.
// This one connects while a stream keeps the drain going.
TEST(Lifecycle, RefusesNewConnectionsWhileItDrains) {
  auto f = Ferryd::start(mock_pipeline("tokens_per_second = 10"));
  std::promise<void> first_chunk;
  bool signalled = false;
  auto pending = std::async(std::launch::async, [&] {
    return http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "a b c d e f g h i j k l", R"("stream":true)"), {},
                         [&](std::string_view) {
                           if (!signalled) {
                             signalled = true;
                             first_chunk.set_value();
                           }
                           return true;
                         });
  });
  first_chunk.get_future().wait();
  f->process().signal(SIGTERM);
  ASSERT_TRUE(f->log_line("draining in-flight requests"));
  // Still running (the stream has a second to go), but no longer accepting.
  auto late = http_post(f->address(), "/v1/chat/completions", chat_body("m", "too late"));
  EXPECT_EQ(late.status, 0) << "a request during the drain got an answer: " << late.body;
  auto s = pending.get();
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_EQ(f->process().wait_exit(std::chrono::seconds(10)), 0) << f->output();
}

// A stream longer than drain_timeout_ms: ferryd gives up on it at the
// timeout, ends it with an error event that says why, runs its plugins'
// on_complete, and still exits 0 without leaking or crashing.
TEST(Lifecycle, ADrainThatTimesOutCancelsWhatIsLeftAndExitsZero) {
  auto f = Ferryd::start("[server]\ndrain_timeout_ms = 300\n\n" + mock_pipeline("tokens_per_second = 2"));
  std::promise<void> first_chunk;
  bool signalled = false;
  auto pending = std::async(std::launch::async, [&] {
    return http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "a b c d e f g h i j k l", R"("stream":true)"), {},
                         [&](std::string_view) {
                           if (!signalled) {
                             signalled = true;
                             first_chunk.set_value();
                           }
                           return true;
                         });
  });
  first_chunk.get_future().wait();
  f->process().signal(SIGTERM);
  auto s = pending.get();  // returns once ferryd ended it: it had 6 s of words left
  EXPECT_TRUE(s.ends_with_done()) << s.raw;
  EXPECT_NE(s.raw.find("ferryd is shutting down: drain_timeout_ms passed"), std::string::npos) << s.raw;
  EXPECT_NE(s.content(), "Ferry mock reply: a b c d e f g h i j k l");
  EXPECT_EQ(f->process().wait_exit(std::chrono::seconds(10)), 0) << f->output();
  EXPECT_NE(f->output().find("drain timeout: 1 requests were still in flight"), std::string::npos)
      << f->output();
}

TEST(Lifecycle, ListenFlagOverridesTheConfig) {
  // The config asks for a port that is taken; --listen 127.0.0.1:0 wins.
  MockUpstream taken;
  auto port = taken.address().substr(taken.address().rfind(':') + 1);
  auto f = Ferryd::start("[server]\nlisten = \"127.0.0.1:" + port + "\"\n" + mock_pipeline());
  EXPECT_NE(f->address(), taken.address());
  expect_healthy(f->address());
}

TEST(Lifecycle, ReportsAnAddressInUseAndExitsOne) {
  MockUpstream taken;
  TempDir dir;
  auto path = dir.write("ferry.toml", mock_pipeline());
  auto r = run({FERRY_TEST_FERRYD, "--config", path, "--listen", taken.address(), "--admin-listen", "off"});
  EXPECT_EQ(r.status, 1) << r.output;
  EXPECT_NE(r.output.find("cannot listen on " + taken.address()), std::string::npos) << r.output;
}

TEST(Lifecycle, LogLevelFlagOverridesTheConfig) {
  auto f = Ferryd::start(mock_pipeline(), {"--log-level", "warn"});
  ASSERT_EQ(http_post(f->address(), "/v1/chat/completions", chat_body("m", "x")).status, 200);
  EXPECT_EQ(f->stop(), 0);
  EXPECT_EQ(f->output().find("access request_id="), std::string::npos) << f->output();
}

TEST(Lifecycle, RejectsABadCommandLineWithExitTwo) {
  auto r = run({FERRY_TEST_FERRYD, "--config"});
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("--config needs a value"), std::string::npos) << r.output;
  auto u = run({FERRY_TEST_FERRYD, "--frobnicate"});
  EXPECT_EQ(u.status, 2);
  EXPECT_NE(u.output.find("usage: ferryd"), std::string::npos) << u.output;
}

TEST(Lifecycle, RejectsABadConfigWithFileLineColumnAndExitTwo) {
  auto r = ferryd_refusing("[server]\nthreads = \"many\"\n" + mock_pipeline());
  EXPECT_EQ(r.status, 2);
  EXPECT_NE(r.output.find("ferry.toml:2:11: threads in [server] must be an integer, not a string"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ferry::test
