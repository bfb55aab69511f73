#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

#include "tests/support/fixtures.h"
#include "tests/support/http.h"

namespace ferry::test {

// One pipeline "default" serving model "m" with the in-process mock provider.
inline std::string mock_pipeline(const std::string& mock_options = "",
                                 const std::string& pipeline_extra = "") {
  return "[log]\nlevel = \"info\"\n\n[providers.mock]\n" + mock_options +
         "\n\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\n" + pipeline_extra + "\n";
}

// An openai-adapter provider NAME pointing at a mock upstream.
inline std::string openai_provider(const std::string& name, const MockUpstream& up,
                                   const std::string& extra = "") {
  return "[providers." + name + "]\nplugin = \"openai\"\nbase_url = \"" + up.url() + "/v1\"\n" + extra + "\n";
}

// Polls `condition` until it holds or `within` passes. For state that ferryd
// updates just after the response went out (counters, health).
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds within = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + within;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return condition();
}

// The answer of a /health request (fails the test if ferryd is not up).
inline void expect_healthy(const std::string& address) {
  auto h = http_get(address, "/health");
  EXPECT_EQ(h.status, 200) << "ferryd is not up: " << h.error;
}

// Asserts the OpenAI error shape and returns the message.
inline std::string error_message(const HttpResponse& r) {
  auto j = r.json();
  EXPECT_TRUE(j.contains("error") && j["error"].is_object()) << r.body;
  if (!j.contains("error")) return {};
  EXPECT_TRUE(j["error"]["message"].is_string()) << r.body;
  EXPECT_TRUE(j["error"]["type"].is_string()) << r.body;
  EXPECT_TRUE(j["error"].contains("code")) << r.body;
  return j["error"].value("message", "");
}

}  // namespace ferry::test
