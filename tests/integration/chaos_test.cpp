// Chaos: three upstreams, one killed and restarted midway, one failing half
// of its requests, one slow. No request may fail while a healthy provider
// could have served it. CHAOS_REQUESTS sets the number of requests (2,000 in
// the suite; tests/bench/chaos.sh runs 10,000 and BENCHMARKS.md has the figures).
#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <iostream>
#include <mutex>
#include <thread>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

TEST(Chaos, NoRequestFailsThatAHealthyProviderCouldServe) {
  const int total = std::getenv("CHAOS_REQUESTS") ? std::atoi(std::getenv("CHAOS_REQUESTS")) : 2000;
  auto a = std::make_unique<MockUpstream>();  // killed and restarted
  MockUpstream slow;
  slow.set_faults(R"({"delay_ms":20})");
  const std::string a_address = a->address();
  // Short cooldowns so that a's return is noticed within the run.
  auto f = Ferryd::start("[log]\naccess_log = false\n\n" +
                         openai_provider("a", *a, "[providers.a.breaker]\ncooldown_ms = 300\n") +
                         "[providers.flaky]\nplugin = \"mock\"\nerror_status = 500\nerror_rate = 0.5\n\n" +
                         openai_provider("slow", slow) +
                         "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"a\", \"flaky\", \"slow\"]\n"
                         "router = \"round-robin\"\n");

  std::atomic<int> next{0};
  std::atomic<int> failures{0};
  std::mutex mu;
  std::vector<double> latencies_ms;
  std::string first_failure;
  auto worker = [&] {
    for (int i = next++; i < total; i = next++) {
      auto start = std::chrono::steady_clock::now();
      auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "chaos " + std::to_string(i)));
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      std::lock_guard lock(mu);
      latencies_ms.push_back(ms);
      if (r.status != 200) {
        ++failures;
        if (first_failure.empty()) first_failure = std::to_string(r.status) + " " + r.body + r.error;
      }
    }
  };
  auto started = std::chrono::steady_clock::now();
  std::vector<std::thread> clients;
  for (int t = 0; t < 8; ++t) clients.emplace_back(worker);

  // a dies at 30 % of the run and comes back on the same address at 60 %.
  while (next < total * 3 / 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  int a_before = a->requests();
  a.reset();
  while (next < total * 6 / 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  a = std::make_unique<MockUpstream>(std::vector<std::string>{"--listen", a_address});
  for (auto& c : clients) c.join();
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  std::sort(latencies_ms.begin(), latencies_ms.end());
  auto pct = [&](double q) { return latencies_ms[static_cast<size_t>(q * (latencies_ms.size() - 1))]; };
  auto health = http_get(f->address(), "/health").json();
  std::cout << "chaos: requests=" << total << " failures=" << failures << " seconds=" << seconds
            << " p50_ms=" << pct(0.5) << " p99_ms=" << pct(0.99) << " max_ms=" << latencies_ms.back()
            << " a_before_kill=" << a_before << " a_after_restart=" << a->requests()
            << " slow=" << slow.requests() << " providers=" << health["providers"].dump() << "\n";

  EXPECT_EQ(failures, 0) << "first failure: " << first_failure;
  EXPECT_GT(a_before, 0);
  EXPECT_GT(a->requests(), 0) << "a came back but was never used again";
  EXPECT_GT(slow.requests(), 0);
}

}  // namespace
}  // namespace ferry::test
