#include "core/log/log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace ferry::log {
namespace {
std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = spdlog::stderr_logger_st("ferryd-boot");
    l->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
    return l;
  }();
  return logger;
}
}  // namespace

std::optional<spdlog::level::level_enum> parse_level(std::string_view name) {
  if (name == "trace") return spdlog::level::trace;
  if (name == "debug") return spdlog::level::debug;
  if (name == "info") return spdlog::level::info;
  if (name == "warn") return spdlog::level::warn;
  if (name == "error") return spdlog::level::err;
  if (name == "off") return spdlog::level::off;
  return std::nullopt;
}

void init(spdlog::level::level_enum level) {
  spdlog::init_thread_pool(64 * 1024, 1);
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::async_logger>("ferryd", sink, spdlog::thread_pool(),
                                                       spdlog::async_overflow_policy::overrun_oldest);
  logger->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v");
  logger->set_level(level);
  // A line logged just before a crash or exit should not be lost.
  logger->flush_on(spdlog::level::info);
  logger_slot() = logger;
}

spdlog::logger& get() { return *logger_slot(); }

void shutdown() {
  logger_slot()->flush();
  spdlog::shutdown();
}

}  // namespace ferry::log
