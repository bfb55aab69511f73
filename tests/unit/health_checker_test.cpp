// Active health checks without sockets: the thresholds that take a provider
// out of routing and put it back, and what is announced.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/resilience/health_checker.h"
#include "core/resilience/provider_health.h"

namespace ferry::resilience {
namespace {

struct Recorder {
  std::vector<std::string> events;
  HealthChecker::Changed callback() {
    return [this](bool healthy, const std::string& error) {
      events.push_back(healthy ? "healthy" : "unhealthy: " + error);
    };
  }
};

TEST(HealthChecker, FailingTakesUnhealthyAfterProbesInARow) {
  ProviderHealth health;
  Recorder rec;
  HealthChecker checker(health, 2, 1, rec.callback());
  checker.record("connection refused");
  EXPECT_TRUE(health.available());
  checker.record(std::string());  // a success resets the count
  checker.record("connection refused");
  EXPECT_TRUE(health.available());
  checker.record("timed out");
  EXPECT_FALSE(health.available());
  EXPECT_TRUE(health.probe_failing());
  checker.record("timed out");  // still failing: announced once
  ASSERT_EQ(rec.events, std::vector<std::string>{"unhealthy: timed out"});
  auto probes = health.probes();
  EXPECT_EQ(probes.count, 5u);
  EXPECT_TRUE(probes.failing);
  EXPECT_EQ(probes.last_error, "timed out");
}

TEST(HealthChecker, RecoversAfterHealthyAfterSuccessesInARow) {
  ProviderHealth health;
  Recorder rec;
  HealthChecker checker(health, 1, 2, rec.callback());
  checker.record("HTTP 500");
  EXPECT_FALSE(health.available());
  checker.record(std::string());
  EXPECT_FALSE(health.available());
  checker.record("HTTP 500");  // a failure resets the successes
  checker.record(std::string());
  checker.record(std::string());
  EXPECT_TRUE(health.available());
  EXPECT_EQ(rec.events, (std::vector<std::string>{"unhealthy: HTTP 500", "healthy"}));
  EXPECT_EQ(health.probes().last_error, "");
}

TEST(HealthChecker, FirstSuccessesAnnounceNothing) {
  ProviderHealth health;
  Recorder rec;
  HealthChecker checker(health, 2, 1, rec.callback());
  checker.record(std::string());
  checker.record(std::string());
  EXPECT_TRUE(rec.events.empty());
  EXPECT_EQ(health.probes().count, 2u);
}

TEST(ProviderHealth, DrainedAndFailingProbesBothTakeItOutOfRotation) {
  ProviderHealth health;
  EXPECT_TRUE(health.available());
  EXPECT_FALSE(health.set_drained(true));
  EXPECT_FALSE(health.available());
  EXPECT_TRUE(health.set_drained(false));
  EXPECT_TRUE(health.available());
  health.set_probe_failing(true);
  EXPECT_FALSE(health.available());
  EXPECT_FALSE(health.drained());
}

}  // namespace
}  // namespace ferry::resilience
