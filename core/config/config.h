#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/json/doc.h"
#include "core/resilience/breaker.h"
#include "core/resilience/policy.h"

namespace toml {
inline namespace v3 {
class table;
class node;
}  // namespace v3
}  // namespace toml

namespace ferry::config {

struct SourcePos {
  std::string file;
  uint32_t line = 0;
  uint32_t column = 0;
};

// One problem with a configuration, printed as "file:line:col: message".
struct Diagnostic {
  SourcePos pos;
  std::string message;
  std::string str() const;
};

// A plugin reference and the options the host passes to it: the block's TOML
// table minus the keys the host reads itself.
struct PluginBlock {
  std::string name;    // the block's name, e.g. [providers.NAME]
  std::string title;   // how messages name it: "[providers.NAME]"
  std::string plugin;  // plugin name or path to a .so
  SourcePos pos;       // of the block (or of the plugin key)
  json::Value options = json::Value::object();
  // The TOML node `options` came from, to place plugin-reported errors.
  const toml::node* source = nullptr;
};

struct ServerConfig {
  std::string host = "127.0.0.1";
  uint16_t port = 8080;
  unsigned threads = 0;  // 0: one per core
  uint32_t drain_timeout_ms = 30'000;
  uint32_t idle_timeout_ms = 60'000;    // a kept-alive connection waiting for its next request
  uint32_t header_timeout_ms = 10'000;  // from a request's first byte to the end of its headers
  uint32_t body_timeout_ms = 60'000;    // for the whole body once the headers are in
};

// Every input dimension ferryd parses, in one place: [limits] in TOML, the
// README lists them with their defaults. Past a limit a client gets a precise
// 4xx naming it; nothing is parsed or allocated beyond it.
struct LimitsConfig {
  size_t max_body_bytes = 4 * 1024 * 1024;  // also accepted as [server] max_body_bytes
  uint32_t max_header_bytes = 64 * 1024;    // request line and headers together
  uint32_t max_header_count = 100;
  // 0: derived from the file-descriptor limit, keeping room for upstream
  // sockets and the admin listener. Near it the oldest idle connections go.
  uint32_t max_connections = 0;
  // A client body's JSON (ParseLimits): nesting, keys per object, items per
  // array, values in all, bytes per string. Duplicate keys are refused.
  uint32_t max_json_depth = json::ParseLimits::kDefaultDepth;
  uint32_t max_object_keys = 10'000;
  uint32_t max_array_items = 100'000;
  uint64_t max_json_values = 1'000'000;
  uint64_t max_string_bytes = 4 * 1024 * 1024;
  // The shape of a chat request.
  uint32_t max_messages = 10'000;
  uint32_t max_tools = 512;
  uint32_t max_images = 500;

  json::ParseLimits request_json() const;
};

// The admin listener: a separate address for operators (health, breakers,
// draining a provider), optionally behind a bearer token.
struct AdminConfig {
  bool enabled = true;
  std::string host = "127.0.0.1";
  uint16_t port = 9090;
  std::string token_env;  // environment variable holding the bearer token; empty: no token
};

// Shared state for plugins (rate limits, budgets, keys, caches): kept in
// memory, in Redis (shared by several ferryd instances) or in SQLite (durable).
struct StateConfig {
  std::string backend = "memory";  // memory | redis | sqlite
  std::string redis_url = "redis://127.0.0.1:6379/0";
  std::string sqlite_path = "ferry-state.db";  // relative to the config file
  uint32_t connect_timeout_ms = 1'000;
  uint32_t command_timeout_ms = 1'000;
  uint64_t memory_max_keys = 1'000'000;  // memory: beyond this, expired then oldest keys go
  // Encryption at rest (redis, sqlite): values are sealed with the key in this
  // variable; the older keys still open what they sealed (rotation).
  std::string encryption_key_env;
  std::vector<std::string> decryption_key_envs;
};

struct LogConfig {
  std::string level = "info";
  bool access_log = true;
};

// Active health checks: a cheap probe (the adapter's build_probe) every
// interval; after unhealthy_after failures in a row the provider is left out
// of routing until healthy_after successes in a row.
struct HealthCheckConfig {
  bool enabled = false;
  uint32_t interval_ms = 10'000;
  uint32_t timeout_ms = 2'000;
  uint32_t unhealthy_after = 2;
  uint32_t healthy_after = 1;
};

struct ProviderConfig {
  PluginBlock block;
  uint32_t connect_timeout_ms = 5'000;
  uint32_t read_timeout_ms = 60'000;               // for response headers and between body bytes
  uint32_t timeout_ms = 600'000;                   // a whole attempt, however slowly the bytes come
  bool stream_usage = true;                        // ask upstream for usage on streams, for accounting
  std::string ca_file;                             // trust this PEM bundle instead of the system store
  json::Value attributes = json::Value::object();  // for routers: tier, price, capabilities, ...
  std::map<std::string, std::string, std::less<>> model_map;  // client model -> upstream model
  resilience::BreakerConfig breaker;
  HealthCheckConfig health_check;
  SourcePos health_check_pos;
};

struct PipelineConfig {
  std::string name;
  SourcePos pos;
  std::vector<std::string> models;
  std::vector<std::string> providers;
  std::vector<SourcePos> provider_pos;
  PluginBlock router;
  std::vector<std::string> middleware;
  std::vector<SourcePos> middleware_pos;
  resilience::Policy policy;
};

// A front door (ABI 1.3): [frontends.NAME]. `models` (globs) limits what it
// exposes; empty means every model the pipelines serve.
struct FrontendConfig {
  PluginBlock block;
  std::vector<std::string> models;
};

struct Config {
  std::string path;
  std::vector<std::string> plugin_dirs;  // absolute
  ServerConfig server;
  LimitsConfig limits;
  AdminConfig admin;
  StateConfig state;
  LogConfig log;
  std::vector<ProviderConfig> providers;
  std::vector<PluginBlock> middleware;  // declared [middleware.NAME] blocks
  std::vector<PipelineConfig> pipelines;
  // Declared [frontends.NAME] blocks; without any, the built-in openai and
  // anthropic frontends serve with their defaults.
  std::vector<FrontendConfig> frontends;
  // Keeps the parsed document alive for PluginBlock::source.
  std::shared_ptr<toml::table> document;

  const ProviderConfig* provider(std::string_view name) const;
  const PluginBlock* middleware_block(std::string_view name) const;
};

struct LoadResult {
  std::unique_ptr<Config> config;  // null when errors is not empty
  std::vector<Diagnostic> errors;
};

LoadResult load_file(const std::string& path);
LoadResult load_string(std::string_view text, const std::string& path);

// Where the value at JSON `pointer` inside a PluginBlock's options came from.
SourcePos position_of(const PluginBlock& block, std::string_view pointer);

// "127.0.0.1:8080", "[::1]:80", ":8080" -> host and port.
bool parse_listen(std::string_view text, std::string& host, uint16_t& port);

}  // namespace ferry::config
