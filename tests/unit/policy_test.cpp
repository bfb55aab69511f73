// Error classes, backoff and Retry-After parsing of the resilience policy.
#include <gtest/gtest.h>

#include "core/resilience/policy.h"

namespace ferry::resilience {
namespace {

using namespace std::chrono_literals;

TEST(Policy, ClassifiesUpstreamErrors) {
  EXPECT_EQ(classify(429, "rate_limit_error", "slow down"), ErrorClass::kRateLimited);
  EXPECT_EQ(classify(503, "server_error", "overloaded"), ErrorClass::kServerError);
  EXPECT_EQ(classify(408, "", ""), ErrorClass::kTimeout);
  EXPECT_EQ(classify(400, "invalid_request_error", "messages: missing"), ErrorClass::kClientError);
  EXPECT_EQ(classify(400, "invalid_request_error", "This model's maximum context length is 8192 tokens"),
            ErrorClass::kContextLength);
  EXPECT_EQ(classify(400, "invalid_request_error", "prompt is too long: 210000 tokens > 200000 maximum"),
            ErrorClass::kContextLength);
  EXPECT_EQ(classify(400, "context_length_exceeded", "x"), ErrorClass::kContextLength);
  EXPECT_EQ(classify(400, "invalid_request_error",
                     "The response was filtered due to the content management policy"),
            ErrorClass::kContentFilter);
  // The upstream refused the gateway's own key: no fault of the client's.
  EXPECT_EQ(classify(401, "invalid_request_error", "Incorrect API key provided"), ErrorClass::kAuth);
  EXPECT_EQ(classify(403, "permission_error", "x"), ErrorClass::kAuth);
}

TEST(Policy, DefaultsFailOverProviderErrorsAndReturnClientErrors) {
  Policy p;
  EXPECT_EQ(p.action(ErrorClass::kConnect), Action::kFailover);
  EXPECT_EQ(p.action(ErrorClass::kRateLimited), Action::kFailover);
  EXPECT_EQ(p.action(ErrorClass::kServerError), Action::kFailover);
  EXPECT_EQ(p.action(ErrorClass::kClientError), Action::kReturn);
  EXPECT_EQ(p.action(ErrorClass::kContentFilter), Action::kReturn);
  EXPECT_EQ(p.action(ErrorClass::kAuth), Action::kFailover);
}

TEST(Policy, BacksOffExponentiallyWithFullJitterUpToTheCap) {
  Policy p;
  p.backoff_base = 100ms;
  p.backoff_max = 1000ms;
  EXPECT_EQ(p.backoff(0, 0.999), 99ms);
  EXPECT_EQ(p.backoff(1, 0.999), 199ms);
  EXPECT_EQ(p.backoff(2, 0.5), 200ms);
  EXPECT_EQ(p.backoff(10, 0.999), 999ms);  // capped
  EXPECT_EQ(p.backoff(3, 0.0), 0ms);       // full jitter reaches down to 0
}

TEST(Policy, ParsesRetryAfterSecondsAndDates) {
  EXPECT_EQ(parse_retry_after("2"), 2000ms);
  EXPECT_EQ(parse_retry_after(" 0.5 "), 500ms);
  EXPECT_FALSE(parse_retry_after(""));
  EXPECT_FALSE(parse_retry_after("soon"));
  EXPECT_FALSE(parse_retry_after("-1"));
  EXPECT_EQ(parse_retry_after("Sun, 06 Nov 1994 08:49:37 GMT"), 0ms);  // in the past
}

}  // namespace
}  // namespace ferry::resilience
