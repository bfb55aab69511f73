#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <string>

namespace ferry::resilience {

// Whether a provider is in rotation, as operators and active health checks
// decide at run time. It lives apart from the provider's configuration so
// that the Runtime built from a config stays immutable: the admin API and the
// health checker write here, routing only reads available().
// Thread-safe; shared by every worker, the admin thread and the checker.
class ProviderHealth {
 public:
  // What routing asks: neither drained by an operator nor failing its probes.
  bool available() const {
    return !drained_.load(std::memory_order_relaxed) && !probe_failing_.load(std::memory_order_relaxed);
  }

  bool drained() const { return drained_.load(); }
  // Takes the provider out of rotation (true) or puts it back; returns the
  // previous value so that only a change is logged.
  bool set_drained(bool drained) { return drained_.exchange(drained); }

  bool probe_failing() const { return probe_failing_.load(); }
  // Returns the previous value so that only a transition is announced.
  bool set_probe_failing(bool failing) { return probe_failing_.exchange(failing); }
  // One completed probe: empty `error` when it succeeded.
  void record_probe(std::string error);

  // A consistent view of the probes for /admin/providers.
  struct Probes {
    uint64_t count = 0;  // probes completed
    bool failing = false;
    std::string last_error;  // of the latest probe; empty when it succeeded
  };
  Probes probes() const;

 private:
  std::atomic<bool> drained_{false};
  std::atomic<bool> probe_failing_{false};
  std::atomic<uint64_t> probes_{0};
  mutable std::mutex mu_;
  std::string probe_error_;  // guarded by mu_
};

}  // namespace ferry::resilience
