#include "core/resilience/provider_health.h"

namespace ferry::resilience {

void ProviderHealth::record_probe(std::string error) {
  {
    std::lock_guard lock(mu_);
    probe_error_ = std::move(error);
  }
  probes_.fetch_add(1);
}

ProviderHealth::Probes ProviderHealth::probes() const {
  std::lock_guard lock(mu_);
  return {probes_.load(), probe_failing_.load(), probe_error_};
}

}  // namespace ferry::resilience
