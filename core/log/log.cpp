#include "core/log/log.h"

#include <spdlog/async.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace ferry::log {
namespace {
constexpr const char* kPattern = "%Y-%m-%dT%H:%M:%S.%e %^%-5l%$ %v";

std::shared_ptr<spdlog::logger> boot_logger(const char* name) {
  auto l = spdlog::stderr_logger_st(name);
  l->set_pattern(kPattern);
  return l;
}
std::shared_ptr<spdlog::logger>& logger_slot() {
  static std::shared_ptr<spdlog::logger> logger = boot_logger("ferryd-boot");
  return logger;
}
std::shared_ptr<spdlog::logger>& lifecycle_slot() {
  static std::shared_ptr<spdlog::logger> logger = boot_logger("ferryd-boot-lifecycle");
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
  auto make = [&](const char* name, spdlog::level::level_enum lvl) {
    auto l = std::make_shared<spdlog::async_logger>(name, sink, spdlog::thread_pool(),
                                                    spdlog::async_overflow_policy::overrun_oldest);
    l->set_pattern(kPattern);
    l->set_level(lvl);
    // A line logged just before a crash or exit should not be lost.
    l->flush_on(spdlog::level::trace);
    return l;
  };
  logger_slot() = make("ferryd", level);
  lifecycle_slot() = make("ferryd-lifecycle", spdlog::level::trace);
}

spdlog::logger& get() { return *logger_slot(); }
spdlog::logger& lifecycle() { return *lifecycle_slot(); }

void LogIfFailed::operator()(std::exception_ptr e) const {
  if (!e) return;
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& x) {
    get().error("{}: failed with an exception: {}", what, x.what());
  } catch (...) {
    get().error("{}: failed with an exception that is not a std::exception", what);
  }
}

void shutdown() {
  logger_slot()->flush();
  lifecycle_slot()->flush();
  spdlog::shutdown();
}

}  // namespace ferry::log
