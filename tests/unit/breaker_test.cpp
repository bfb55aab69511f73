// Circuit breaker transitions, driven with explicit time points.
#include <gtest/gtest.h>

#include "core/resilience/breaker.h"

namespace ferry::resilience {
namespace {

using namespace std::chrono_literals;
using State = Breaker::State;
const Breaker::Clock::time_point t0{std::chrono::hours(1000)};

BreakerConfig config() {
  BreakerConfig c;
  c.consecutive_failures = 3;
  c.error_rate = 0.5;
  c.min_requests = 10;
  c.window = 10s;
  c.cooldown = 5s;
  c.probes = 1;
  return c;
}

TEST(Breaker, OpensAfterConsecutiveFailures) {
  Breaker b(config());
  EXPECT_FALSE(b.record(false, t0));
  EXPECT_FALSE(b.record(false, t0));
  EXPECT_EQ(b.record(false, t0), State::kOpen);
  EXPECT_EQ(b.state(t0), State::kOpen);
  EXPECT_FALSE(b.available(t0 + 1s));
  EXPECT_FALSE(b.acquire(t0 + 1s));
}

TEST(Breaker, ASuccessResetsTheRunOfFailures) {
  Breaker b(config());
  b.record(false, t0);
  b.record(false, t0);
  b.record(true, t0);
  EXPECT_FALSE(b.record(false, t0));
  EXPECT_EQ(b.state(t0), State::kClosed);
}

TEST(Breaker, OpensWhenTheErrorRateOfTheWindowIsTooHigh) {
  Breaker b(config());
  // Alternating: never 3 in a row, but half of 10 failed.
  for (int i = 0; i < 9; ++i) EXPECT_FALSE(b.record(i % 2 == 0, t0 + std::chrono::milliseconds(i)));
  EXPECT_EQ(b.record(false, t0 + 10ms), State::kOpen);
}

TEST(Breaker, ForgetsFailuresOlderThanTheWindow) {
  Breaker b(config());
  for (int i = 0; i < 9; ++i) b.record(i % 2 == 0, t0);
  // 20 s later the old outcomes no longer count: one failure is far from 10 requests.
  EXPECT_FALSE(b.record(false, t0 + 20s));
  EXPECT_DOUBLE_EQ(b.error_rate(t0 + 20s), 1.0);
  EXPECT_EQ(b.state(t0 + 20s), State::kClosed);
}

TEST(Breaker, LetsOneProbeThroughAfterTheCooldownAndClosesOnSuccess) {
  Breaker b(config());
  for (int i = 0; i < 3; ++i) b.record(false, t0);
  EXPECT_FALSE(b.available(t0 + 4s));
  EXPECT_TRUE(b.available(t0 + 5s));
  EXPECT_EQ(b.state(t0 + 5s), State::kHalfOpen);
  EXPECT_TRUE(b.acquire(t0 + 5s));
  EXPECT_FALSE(b.acquire(t0 + 5s));  // the one probe is out
  EXPECT_FALSE(b.available(t0 + 5s));
  EXPECT_EQ(b.record(true, t0 + 6s), State::kClosed);
  EXPECT_TRUE(b.acquire(t0 + 6s));
  EXPECT_TRUE(b.acquire(t0 + 6s));
}

TEST(Breaker, ReopensWhenTheProbeFails) {
  Breaker b(config());
  for (int i = 0; i < 3; ++i) b.record(false, t0);
  ASSERT_TRUE(b.acquire(t0 + 5s));
  EXPECT_EQ(b.record(false, t0 + 6s), State::kOpen);
  EXPECT_FALSE(b.available(t0 + 10s));  // a new cooldown from the failed probe
  EXPECT_TRUE(b.available(t0 + 11s));
}

TEST(Breaker, HonoursTheNumberOfProbes) {
  auto c = config();
  c.probes = 2;
  Breaker b(c);
  for (int i = 0; i < 3; ++i) b.record(false, t0);
  EXPECT_TRUE(b.acquire(t0 + 5s));
  EXPECT_TRUE(b.acquire(t0 + 5s));
  EXPECT_FALSE(b.acquire(t0 + 5s));
}

TEST(Breaker, DoesNothingWhenDisabled) {
  auto c = config();
  c.enabled = false;
  Breaker b(c);
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(b.record(false, t0));
  EXPECT_TRUE(b.acquire(t0));
}

}  // namespace
}  // namespace ferry::resilience
