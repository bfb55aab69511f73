#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include <boost/asio/awaitable.hpp>

#include "core/pipeline/runtime.h"
#include "core/resilience/health_checker.h"
#include "host/ferryd/worker.h"

namespace ferry::host {

// Active health checks of every provider that has them configured, on their
// own thread so that a slow probe never holds up a request. The policy
// (thresholds, interval) is resilience::HealthChecker's; this class makes the
// probes (the adapter's build_probe, sent through its own upstream client)
// and announces transitions as runtime events.
class HealthChecks {
 public:
  HealthChecks(const pipeline::Runtime& runtime, const std::atomic<bool>& stop)
      : runtime_(runtime), stop_(stop) {}
  ~HealthChecks() { stop(); }
  HealthChecks(const HealthChecks&) = delete;
  HealthChecks& operator=(const HealthChecks&) = delete;

  // Starts the thread if any provider has health checks; runs until `stop` is set.
  void start();
  // Stops the thread and waits for it.
  void stop();

 private:
  boost::asio::awaitable<std::string> probe(const pipeline::Provider& p);

  const pipeline::Runtime& runtime_;
  const std::atomic<bool>& stop_;
  // Declared before the worker: they outlive the coroutines its loop holds.
  std::vector<std::unique_ptr<resilience::HealthChecker>> checkers_;
  std::unique_ptr<Worker> worker_;
};

}  // namespace ferry::host
