#include "core/resilience/health_checker.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ferry::resilience {

void HealthChecker::record(std::string error) {
  bool failed = !error.empty();
  std::string detail = failed ? error : std::string();
  // The error is visible before the flag flips, as /admin/providers reads both.
  health_.record_probe(std::move(error));
  // The transition is read back from the flag, not from the counters: the
  // flag is what routing sees, and only a real change is announced.
  if (failed) {
    successes_ = 0;
    if (++failures_ >= unhealthy_after_ && !health_.set_probe_failing(true) && changed_)
      changed_(false, detail);
  } else {
    failures_ = 0;
    if (++successes_ >= healthy_after_ && health_.set_probe_failing(false) && changed_)
      changed_(true, detail);
  }
}

boost::asio::awaitable<void> HealthChecker::run(Probe probe, std::chrono::milliseconds interval,
                                                const std::atomic<bool>& stop) {
  auto executor = co_await boost::asio::this_coro::executor;
  boost::asio::steady_timer timer(executor);
  while (!stop.load()) {
    std::string error = co_await probe();
    record(std::move(error));
    timer.expires_after(interval);
    co_await timer.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  }
}

}  // namespace ferry::resilience
