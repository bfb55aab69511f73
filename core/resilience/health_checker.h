#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include <boost/asio/awaitable.hpp>

#include "core/resilience/provider_health.h"

namespace ferry::resilience {

// Active health checks of one provider: a probe every interval; enough
// failures in a row mark it failing (out of routing, see
// ProviderHealth::available()), enough successes in a row put it back.
// How a probe is made (the adapter's build_probe, the upstream client) is the
// caller's: this class holds only the policy, so it is tested without sockets.
class HealthChecker {
 public:
  // Empty when the provider answered as hoped; otherwise what went wrong.
  using Probe = std::function<boost::asio::awaitable<std::string>()>;
  // A transition: healthy again (`error` empty) or failing, with the probe's error.
  using Changed = std::function<void(bool healthy, const std::string& error)>;

  HealthChecker(ProviderHealth& health, uint32_t unhealthy_after, uint32_t healthy_after, Changed changed)
      : health_(health),
        unhealthy_after_(unhealthy_after),
        healthy_after_(healthy_after),
        changed_(std::move(changed)) {}

  // Applies one probe's result (empty: success).
  void record(std::string error);

  // Probes until `stop` is set, waiting `interval` after each probe. Runs on
  // the caller's executor; `probe` runs there too.
  boost::asio::awaitable<void> run(Probe probe, std::chrono::milliseconds interval,
                                   const std::atomic<bool>& stop);

 private:
  ProviderHealth& health_;
  uint32_t unhealthy_after_;
  uint32_t healthy_after_;
  Changed changed_;
  uint32_t failures_ = 0;   // probes failed in a row
  uint32_t successes_ = 0;  // probes succeeded in a row
};

}  // namespace ferry::resilience
