// ferryd: the Ferry gateway daemon.
#include <sys/resource.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <ferry/version.h>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>

#include "core/config/config.h"
#include "core/log/log.h"
#include "core/pipeline/runtime.h"
#include "core/plugin/host_api.h"
#include "core/state/store.h"
#include "core/util/secrets.h"
#include "host/ferryd/server.h"

namespace {

constexpr const char* kUsage =
    "usage: ferryd --config FILE [--listen HOST:PORT] [--admin-listen HOST:PORT|off] [--log-level LEVEL]\n"
    "\n"
    "  --config FILE       the TOML configuration (see config/ferry.toml)\n"
    "  --listen HOST:PORT  overrides [server] listen\n"
    "  --admin-listen A    overrides [admin] listen; \"off\" turns the admin API off\n"
    "  --log-level LEVEL   trace, debug, info, warn, error or off; overrides [log] level\n"
    "  --version           prints the version and exits\n"
    "\n"
    "Exit status: 0 after a clean shutdown (SIGTERM/SIGINT), 2 for a bad command line,\n"
    "configuration or plugin, 1 if the listen address cannot be bound.\n";

int usage_error(const std::string& why) {
  std::cerr << "ferryd: " << why << "\n\n" << kUsage;
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  std::string listen;
  std::string admin_listen;
  std::string level_name;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* name) -> const char* {
      if (i + 1 >= argc) return nullptr;
      (void)name;
      return argv[++i];
    };
    if (arg == "--help" || arg == "-h") {
      std::cout << kUsage;
      return 0;
    } else if (arg == "--version") {
      std::cout << "ferryd " << FERRY_SDK_VERSION_STRING << " (plugin ABI " << FERRY_ABI_MAJOR << "."
                << FERRY_ABI_MINOR << ")\n";
      return 0;
    } else if (arg == "--config" || arg == "--listen" || arg == "--admin-listen" || arg == "--log-level") {
      const char* v = value(arg.c_str());
      if (!v) return usage_error(arg + " needs a value");
      (arg == "--config"         ? config_path
       : arg == "--listen"       ? listen
       : arg == "--admin-listen" ? admin_listen
                                 : level_name) = v;
    } else {
      return usage_error("unknown argument '" + arg + "'");
    }
  }
  if (config_path.empty()) return usage_error("--config FILE is required");

  auto loaded = ferry::config::load_file(config_path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::cerr << e.str() << "\n";
    return 2;
  }
  std::shared_ptr<ferry::config::Config> cfg = std::move(loaded.config);
  if (!listen.empty() && !ferry::config::parse_listen(listen, cfg->server.host, cfg->server.port))
    return usage_error("--listen must be HOST:PORT, not '" + listen + "'");
  if (admin_listen == "off")
    cfg->admin.enabled = false;
  else if (!admin_listen.empty() &&
           !ferry::config::parse_listen(admin_listen, cfg->admin.host, cfg->admin.port))
    return usage_error("--admin-listen must be HOST:PORT or off, not '" + admin_listen + "'");
  if (level_name.empty()) level_name = cfg->log.level;
  auto level = ferry::log::parse_level(level_name);
  if (!level) return usage_error("unknown log level '" + level_name + "'");

  std::signal(SIGPIPE, SIG_IGN);
  // Every stream holds two sockets (client and upstream): take all the file
  // descriptors the hard limit allows rather than fail at the default 1024.
  if (rlimit nofile{}; ::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
    nofile.rlim_cur = nofile.rlim_max;
    ::setrlimit(RLIMIT_NOFILE, &nofile);
  }
  ferry::log::init(*level);
  auto& log = ferry::log::get();

  // Shared state comes first: plugins may use it from their first request.
  std::string state_error;
  auto store = ferry::state::Store::make(cfg->state, state_error);
  if (!store) {
    ferry::log::shutdown();
    std::cerr << cfg->path << ": " << state_error << "\n";
    return 2;
  }
  ferry::plugin::set_state_store(store.get());

  std::vector<ferry::config::Diagnostic> errors;
  auto runtime = ferry::pipeline::Runtime::build(cfg, errors);
  if (!runtime) {
    ferry::plugin::set_state_store(nullptr);
    store->stop();
    ferry::log::shutdown();
    for (const auto& e : errors) std::cerr << e.str() << "\n";
    return 2;
  }

  ferry::host::ServerOptions options;
  options.host = cfg->server.host;
  options.port = cfg->server.port;
  options.threads = cfg->server.threads;
  options.limits = cfg->limits;
  options.idle_timeout = std::chrono::milliseconds(cfg->server.idle_timeout_ms);
  options.header_timeout = std::chrono::milliseconds(cfg->server.header_timeout_ms);
  options.body_timeout = std::chrono::milliseconds(cfg->server.body_timeout_ms);
  options.drain_timeout = std::chrono::milliseconds(cfg->server.drain_timeout_ms);
  options.access_log = cfg->log.access_log;
  options.admin = cfg->admin.enabled;
  options.admin_host = cfg->admin.host;
  options.admin_port = cfg->admin.port;
  if (!cfg->admin.token_env.empty()) {
    options.admin_token = std::getenv(cfg->admin.token_env.c_str());
    ferry::secrets::remember(options.admin_token);
  }

  // Signals are taken by the control thread only; workers never see them.
  boost::asio::io_context control;
  boost::asio::signal_set signals(control, SIGINT, SIGTERM);
  int received = 0;
  signals.async_wait([&](const boost::system::error_code& ec, int sig) {
    if (!ec) received = sig;
  });

  int status = 0;
  {
    ferry::host::Server server(*runtime, options);
    std::string why;
    if (!server.start(&why)) {
      log.error("{}", why);
      ferry::log::shutdown();
      return 1;
    }
    std::string models;
    for (const auto& p : runtime->pipelines())
      for (const auto& m : p->models) models += (models.empty() ? "" : ", ") + m;
    std::string admin = server.admin_address().empty() ? "off" : server.admin_address();
    ferry::log::lifecycle().info(
        "ferryd {} ready: listening on {} ({} workers; admin {}; state {}; models: {})",
        FERRY_SDK_VERSION_STRING, server.address(), server.workers(), admin, store->backend(), models);

    control.run();
    ferry::log::lifecycle().info("received {}; draining in-flight requests (up to {} ms)",
                                 received == SIGTERM ? "SIGTERM" : "SIGINT", options.drain_timeout.count());
    size_t left = server.drain();
    if (left)
      log.warn("drain timeout: {} requests were still in flight", left);
    else
      ferry::log::lifecycle().info("drained; exiting");
  }
  runtime.reset();
  // After the plugins: the last state writes of on_complete hooks are flushed.
  ferry::plugin::set_state_store(nullptr);
  store->stop();
  store.reset();
  ferry::log::shutdown();
  return status;
}
