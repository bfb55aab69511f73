#include "host/ferryd/health_checks.h"

#include <algorithm>
#include <chrono>

#include <boost/asio/co_spawn.hpp>

#include "core/log/log.h"
#include "core/plugin/host_api.h"

namespace ferry::host {

void HealthChecks::start() {
  bool any = false;
  for (const auto& p : runtime_.providers()) any = any || p->health_check.enabled;
  if (!any) return;
  worker_ = std::make_unique<Worker>();
  worker_->upstream = http::UpstreamClient::create(worker_->io.get_executor());
  for (const auto& p : runtime_.providers()) {
    if (!p->health_check.enabled) continue;
    const pipeline::Provider& provider = *p;
    const auto& hc = provider.health_check;
    auto changed = [this, &provider](bool healthy, const std::string& error) {
      std::string detail = healthy ? std::string("healthy") : "unhealthy: " + error;
      runtime_.emit({FERRY_EVENT_HEALTH_CHANGED, provider.name, {}, {}, {}, {}, detail});
    };
    checkers_.push_back(std::make_unique<resilience::HealthChecker>(*provider.health, hc.unhealthy_after,
                                                                    hc.healthy_after, changed));
    auto probe_once = [this, &provider] { return probe(provider); };
    boost::asio::co_spawn(worker_->io,
                          checkers_.back()->run(probe_once, std::chrono::milliseconds(hc.interval_ms), stop_),
                          log::LogIfFailed{"health checks of provider '" + provider.name + "'"});
  }
  worker_->run_on_thread("health checks");
}

void HealthChecks::stop() {
  if (worker_) worker_->stop();
}

// One probe: empty if the provider answered 2xx in time, else what went wrong.
boost::asio::awaitable<std::string> HealthChecks::probe(const pipeline::Provider& p) {
  plugin::UpstreamBuild build;
  build.request.method = "GET";
  ferry_status st = p.plugin->vt().build_probe(p.plugin->instance(), plugin::handle(&build));
  if (st != FERRY_OK || build.request.url.empty())
    co_return "its adapter could not build a probe (status " + std::to_string(st) + ")";
  http::UpstreamOptions limits = p.upstream;
  limits.read = std::chrono::milliseconds(p.health_check.timeout_ms);
  limits.connect = std::min(limits.connect, limits.read);
  auto sent = co_await worker_->upstream->send(build.request, limits);
  if (sent.error) co_return sent.error.message;
  std::string body;
  auto err = co_await sent.exchange->read_all(body, 1024 * 1024);
  if (err) co_return err.message;
  int status = sent.exchange->status();
  if (status < 200 || status > 299) co_return "probe answered HTTP " + std::to_string(status);
  co_return std::string();
}

}  // namespace ferry::host
