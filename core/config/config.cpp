#include "core/config/config.h"

#include <charconv>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>

#define TOML_HEADER_ONLY 0
#define TOML_SHARED_LIB 1
#include <toml++/toml.h>

namespace ferry::config {

std::string Diagnostic::str() const {
  return pos.file + ":" + std::to_string(pos.line) + ":" + std::to_string(pos.column) + ": " + message;
}

json::ParseLimits LimitsConfig::request_json() const {
  json::ParseLimits p;
  p.max_depth = max_json_depth;
  p.max_object_keys = max_object_keys;
  p.max_array_items = max_array_items;
  p.max_values = max_json_values;
  p.max_string_bytes = max_string_bytes;
  p.reject_duplicate_keys = true;
  return p;
}

const ProviderConfig* Config::provider(std::string_view name) const {
  for (const auto& p : providers)
    if (p.block.name == name) return &p;
  return nullptr;
}

const PluginBlock* Config::middleware_block(std::string_view name) const {
  for (const auto& m : middleware)
    if (m.name == name) return &m;
  return nullptr;
}

bool parse_listen(std::string_view text, std::string& host, uint16_t& port) {
  std::string_view h;
  std::string_view p;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':') return false;
    h = text.substr(1, close - 1);
    p = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string_view::npos) return false;
    h = text.substr(0, colon);
    p = text.substr(colon + 1);
  }
  unsigned value = 0;
  auto [end, ec] = std::from_chars(p.data(), p.data() + p.size(), value);
  if (ec != std::errc() || end != p.data() + p.size() || p.empty() || value > 65535) return false;
  host = h.empty() ? "0.0.0.0" : std::string(h);
  port = static_cast<uint16_t>(value);
  return true;
}

namespace {

SourcePos pos_of(const toml::source_region& r, const std::string& file) {
  return SourcePos{file, r.begin.line, r.begin.column};
}

const char* type_name(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::table: return "a table";
    case toml::node_type::array: return "an array";
    case toml::node_type::string: return "a string";
    case toml::node_type::integer: return "an integer";
    case toml::node_type::floating_point: return "a float";
    case toml::node_type::boolean: return "a boolean";
    default: return "a date/time";
  }
}

json::Value to_json(const toml::node& n) {
  if (auto t = n.as_table()) {
    json::Value out = json::Value::object();
    for (auto&& [k, v] : *t) out[std::string(k.str())] = to_json(v);
    return out;
  }
  if (auto a = n.as_array()) {
    json::Value out = json::Value::array();
    for (auto&& v : *a) out.push_back(to_json(v));
    return out;
  }
  if (auto s = n.as_string()) return s->get();
  if (auto i = n.as_integer()) return i->get();
  if (auto f = n.as_floating_point()) return f->get();
  if (auto b = n.as_boolean()) return b->get();
  std::ostringstream os;
  n.visit([&](auto&& v) { os << v; });
  return os.str();
}

// Reads one TOML table against a schema: typed getters record the keys they
// consume, finish() reports what is left as unknown.
class TableReader {
 public:
  TableReader(const toml::table& table, std::string where, const std::string& file,
              std::vector<Diagnostic>& errors)
      : table_(table), where_(std::move(where)), file_(file), errors_(errors) {}

  const toml::node* get(std::string_view key) {
    known_.emplace(key);
    return table_.get(key);
  }

  void error(const toml::node& n, std::string message) {
    errors_.push_back({pos_of(n.source(), file_), std::move(message)});
  }

  void wrong_type(std::string_view key, const toml::node& n, std::string_view expected) {
    error(n,
          std::string(key) + " in " + where_ + " must be " + std::string(expected) + ", not " + type_name(n));
  }

  bool string(std::string_view key, std::string& out) {
    auto n = get(key);
    if (!n) return false;
    if (!n->is_string()) {
      wrong_type(key, *n, "a string");
      return false;
    }
    out = n->as_string()->get();
    return true;
  }

  template <class T>
  bool integer(std::string_view key, T& out, int64_t min, int64_t max) {
    auto n = get(key);
    if (!n) return false;
    if (!n->is_integer()) {
      wrong_type(key, *n, "an integer");
      return false;
    }
    int64_t v = n->as_integer()->get();
    if (v < min || v > max) {
      error(*n, std::string(key) + " in " + where_ + " must be between " + std::to_string(min) + " and " +
                    std::to_string(max) + ", not " + std::to_string(v));
      return false;
    }
    out = static_cast<T>(v);
    return true;
  }

  bool boolean(std::string_view key, bool& out) {
    auto n = get(key);
    if (!n) return false;
    if (!n->is_boolean()) {
      wrong_type(key, *n, "true or false");
      return false;
    }
    out = n->as_boolean()->get();
    return true;
  }

  bool string_array(std::string_view key, std::vector<std::string>& out, std::vector<SourcePos>* positions) {
    auto n = get(key);
    if (!n) return false;
    auto arr = n->as_array();
    if (!arr) {
      wrong_type(key, *n, "an array of strings");
      return false;
    }
    bool ok = true;
    for (auto&& item : *arr) {
      if (!item.is_string()) {
        error(item, "elements of " + std::string(key) + " in " + where_ + " must be strings, not " +
                        type_name(item));
        ok = false;
        continue;
      }
      out.push_back(item.as_string()->get());
      if (positions) positions->push_back(pos_of(item.source(), file_));
    }
    return ok;
  }

  const toml::table* table(std::string_view key) {
    auto n = get(key);
    if (!n) return nullptr;
    if (!n->is_table()) {
      wrong_type(key, *n, "a table");
      return nullptr;
    }
    return n->as_table();
  }

  // The keys nobody asked for, as plugin options, or as errors.
  json::Value rest() const {
    json::Value out = json::Value::object();
    for (auto&& [k, v] : table_)
      if (!known_.count(std::string(k.str()))) out[std::string(k.str())] = to_json(v);
    return out;
  }

  void finish() {
    for (auto&& [k, v] : table_) {
      if (known_.count(std::string(k.str()))) continue;
      std::string expected;
      for (const auto& kn : known_) expected += (expected.empty() ? "" : ", ") + kn;
      errors_.push_back({pos_of(k.source(), file_), "unknown key '" + std::string(k.str()) + "' in " +
                                                        where_ + " (expected one of: " + expected + ")"});
    }
  }

 private:
  const toml::table& table_;
  std::string where_;
  const std::string& file_;
  std::vector<Diagnostic>& errors_;
  std::set<std::string, std::less<>> known_;
};

void read_server(TableReader& r, ServerConfig& s, LimitsConfig& limits) {
  std::string listen;
  if (r.string("listen", listen)) {
    if (!parse_listen(listen, s.host, s.port))
      r.error(*r.get("listen"),
              "listen in [server] must be HOST:PORT, e.g. \"127.0.0.1:8080\", not \"" + listen + "\"");
  }
  r.integer("threads", s.threads, 0, 1024);
  r.integer("max_body_bytes", limits.max_body_bytes, 1024, int64_t{1} << 32);  // the older place for it
  r.integer("drain_timeout_ms", s.drain_timeout_ms, 0, 3'600'000);
  r.integer("idle_timeout_ms", s.idle_timeout_ms, 100, 3'600'000);
  r.integer("header_timeout_ms", s.header_timeout_ms, 100, 3'600'000);
  r.integer("body_timeout_ms", s.body_timeout_ms, 100, 3'600'000);
  r.finish();
}

void read_limits(TableReader& r, LimitsConfig& l) {
  r.integer("max_body_bytes", l.max_body_bytes, 1024, int64_t{1} << 32);
  r.integer("max_header_bytes", l.max_header_bytes, 1024, 16 << 20);
  r.integer("max_header_count", l.max_header_count, 8, 10'000);
  r.integer("max_connections", l.max_connections, 0, 10'000'000);
  r.integer("max_json_depth", l.max_json_depth, 4, 10'000);
  r.integer("max_object_keys", l.max_object_keys, 16, 100'000'000);
  r.integer("max_array_items", l.max_array_items, 16, 1'000'000'000);
  r.integer("max_json_values", l.max_json_values, 64, int64_t{1} << 40);
  r.integer("max_string_bytes", l.max_string_bytes, 64, int64_t{1} << 40);
  r.integer("max_messages", l.max_messages, 1, 100'000'000);
  r.integer("max_tools", l.max_tools, 0, 1'000'000);
  r.integer("max_images", l.max_images, 0, 1'000'000);
  r.finish();
}

void read_log(TableReader& r, LogConfig& l) {
  if (r.string("level", l.level)) {
    static const std::set<std::string> kLevels{"trace", "debug", "info", "warn", "error", "off"};
    if (!kLevels.count(l.level))
      r.error(*r.get("level"),
              "level in [log] must be one of trace, debug, info, warn, error, off; not \"" + l.level + "\"");
  }
  r.boolean("access_log", l.access_log);
  r.finish();
}

PluginBlock read_block(TableReader& r, const toml::node& node, std::string name, std::string title,
                       const std::string& file) {
  PluginBlock b;
  b.name = std::move(name);
  b.title = std::move(title);
  b.plugin = b.name;
  b.pos = pos_of(node.source(), file);
  if (r.string("plugin", b.plugin)) b.pos = pos_of(r.get("plugin")->source(), file);
  b.source = &node;
  return b;
}

std::string table_title(std::string_view kind, std::string_view name) {
  return "[" + std::string(kind) + "." + std::string(name) + "]";
}

}  // namespace

SourcePos position_of(const PluginBlock& block, std::string_view pointer) {
  SourcePos fallback = block.pos;
  const toml::node* node = block.source;
  if (!node) return fallback;
  std::string file = fallback.file;
  while (!pointer.empty() && pointer.front() == '/') {
    pointer.remove_prefix(1);
    auto end = pointer.find('/');
    std::string token(pointer.substr(0, end));
    pointer = end == std::string_view::npos ? std::string_view() : pointer.substr(end);
    const toml::node* next = nullptr;
    if (auto t = node->as_table()) {
      next = t->get(token);
    } else if (auto a = node->as_array()) {
      size_t i = 0;
      auto [p, ec] = std::from_chars(token.data(), token.data() + token.size(), i);
      if (ec == std::errc() && p == token.data() + token.size()) next = a->get(i);
    }
    if (!next) break;
    node = next;
  }
  if (node == block.source) return fallback;
  return pos_of(node->source(), file);
}

LoadResult load_string(std::string_view text, const std::string& path) {
  LoadResult result;
  auto& errors = result.errors;
  auto cfg = std::make_unique<Config>();
  cfg->path = path;

  toml::table root;
  try {
    root = toml::parse(text, path);
  } catch (const toml::parse_error& e) {
    errors.push_back({pos_of(e.source(), path), std::string(e.description())});
    return result;
  }
  cfg->document = std::make_shared<toml::table>(std::move(root));
  const toml::table& doc = *cfg->document;

  TableReader top(doc, "the top level", path, errors);
  std::vector<std::string> dirs;
  std::vector<SourcePos> dir_pos;
  auto base = std::filesystem::absolute(path).parent_path();
  if (top.string_array("plugin_dirs", dirs, &dir_pos)) {
    for (auto& d : dirs) cfg->plugin_dirs.push_back((base / d).lexically_normal().string());
  }

  if (auto t = top.table("server")) {
    TableReader r(*t, "[server]", path, errors);
    read_server(r, cfg->server, cfg->limits);
  }
  if (auto t = top.table("limits")) {
    TableReader r(*t, "[limits]", path, errors);
    read_limits(r, cfg->limits);
  }
  if (auto t = top.table("log")) {
    TableReader r(*t, "[log]", path, errors);
    read_log(r, cfg->log);
  }
  if (auto t = top.table("admin")) {
    TableReader r(*t, "[admin]", path, errors);
    auto& a = cfg->admin;
    r.boolean("enabled", a.enabled);
    std::string listen;
    if (r.string("listen", listen) && !parse_listen(listen, a.host, a.port))
      r.error(*r.get("listen"),
              "listen in [admin] must be HOST:PORT, e.g. \"127.0.0.1:9090\", not \"" + listen + "\"");
    if (r.string("token_env", a.token_env) && !a.token_env.empty()) {
      // Set but empty would mean an admin API anyone local can use: refused
      // like an unset variable.
      const char* token = std::getenv(a.token_env.c_str());
      if (!token)
        r.error(*r.get("token_env"),
                "token_env in [admin]: environment variable " + a.token_env + " is not set");
      else if (!*token)
        r.error(*r.get("token_env"),
                "token_env in [admin]: environment variable " + a.token_env + " is set but empty");
    }
    r.finish();
  }

  if (auto t = top.table("state")) {
    TableReader r(*t, "[state]", path, errors);
    auto& st = cfg->state;
    if (r.string("backend", st.backend) && st.backend != "memory" && st.backend != "redis" &&
        st.backend != "sqlite")
      r.error(*r.get("backend"),
              "backend in [state] must be \"memory\", \"redis\" or \"sqlite\", not \"" + st.backend + "\"");
    if (r.string("url", st.redis_url) && !st.redis_url.starts_with("redis://"))
      r.error(*r.get("url"),
              "url in [state] must look like redis://HOST:PORT/DB, not \"" + st.redis_url + "\"");
    r.string("path", st.sqlite_path);
    r.integer("connect_timeout_ms", st.connect_timeout_ms, 1, 60'000);
    r.integer("command_timeout_ms", st.command_timeout_ms, 1, 60'000);
    r.integer("memory_max_keys", st.memory_max_keys, 1, 1'000'000'000);
    if (r.string("encryption_key_env", st.encryption_key_env) && !st.encryption_key_env.empty() &&
        !std::getenv(st.encryption_key_env.c_str()))
      r.error(*r.get("encryption_key_env"), "encryption_key_env in [state]: environment variable " +
                                                st.encryption_key_env +
                                                " is not set (it should hold a 32-byte key)");
    r.string_array("decryption_key_envs", st.decryption_key_envs, nullptr);
    if (!st.decryption_key_envs.empty() && st.encryption_key_env.empty())
      r.error(*r.get("decryption_key_envs"), "decryption_key_envs in [state] needs encryption_key_env too");
    r.finish();
  }
  cfg->state.sqlite_path = (base / cfg->state.sqlite_path).lexically_normal().string();

  if (auto t = top.table("providers")) {
    for (auto&& [k, v] : *t) {
      std::string name(k.str());
      auto title = table_title("providers", name);
      auto pt = v.as_table();
      if (!pt) {
        errors.push_back({pos_of(v.source(), path), title + " must be a table, not " + type_name(v)});
        continue;
      }
      TableReader r(*pt, title, path, errors);
      ProviderConfig p;
      p.block = read_block(r, v, name, title, path);
      r.integer("connect_timeout_ms", p.connect_timeout_ms, 1, 600'000);
      r.integer("read_timeout_ms", p.read_timeout_ms, 1, 3'600'000);
      r.integer("timeout_ms", p.timeout_ms, 1, 24 * 3'600'000);
      r.boolean("stream_usage", p.stream_usage);
      if (auto at = r.table("attributes")) p.attributes = to_json(*at);
      if (auto mt = r.table("models")) {
        for (auto&& [k, v] : *mt) {
          if (!v.is_string())
            r.error(v, "models in " + title + " maps client model names to this provider's names; '" +
                           std::string(k.str()) + "' must be a string, not " + type_name(v));
          else
            p.model_map.emplace(std::string(k.str()), v.as_string()->get());
        }
      }
      if (auto ht = r.table("health_check")) {
        TableReader hr(*ht, title + " health_check", path, errors);
        auto& h = p.health_check;
        h.enabled = true;
        p.health_check_pos = pos_of(ht->source(), path);
        hr.boolean("enabled", h.enabled);
        hr.integer("interval_ms", h.interval_ms, 10, 3'600'000);
        hr.integer("timeout_ms", h.timeout_ms, 10, 600'000);
        hr.integer("unhealthy_after", h.unhealthy_after, 1, 1000);
        hr.integer("healthy_after", h.healthy_after, 1, 1000);
        hr.finish();
      }
      if (auto bt = r.table("breaker")) {
        TableReader br(*bt, title + " breaker", path, errors);
        auto& b = p.breaker;
        br.boolean("enabled", b.enabled);
        br.integer("failures", b.consecutive_failures, 0, 1'000'000);
        if (auto n = br.get("error_rate")) {
          if (!n->is_number())
            br.wrong_type("error_rate", *n, "a number between 0 and 1");
          else if (double v = n->value<double>().value_or(-1); v <= 0 || v > 1)
            br.error(*n, "error_rate in " + title + " breaker must be above 0 and at most 1");
          else
            b.error_rate = v;
        }
        br.integer("min_requests", b.min_requests, 0, 1'000'000);
        uint32_t window_ms = static_cast<uint32_t>(b.window.count());
        uint32_t cooldown_ms = static_cast<uint32_t>(b.cooldown.count());
        if (br.integer("window_ms", window_ms, 100, 3'600'000))
          b.window = std::chrono::milliseconds(window_ms);
        if (br.integer("cooldown_ms", cooldown_ms, 1, 3'600'000))
          b.cooldown = std::chrono::milliseconds(cooldown_ms);
        br.integer("probes", b.probes, 1, 1000);
        br.finish();
      }
      if (r.string("ca_file", p.ca_file)) {
        auto abs = (base / p.ca_file).lexically_normal();
        if (!std::filesystem::exists(abs))
          r.error(*r.get("ca_file"), "ca_file in " + title + ": no such file " + abs.string());
        p.ca_file = abs.string();
      }
      p.block.options = r.rest();
      cfg->providers.push_back(std::move(p));
    }
  }

  if (auto t = top.table("middleware")) {
    for (auto&& [k, v] : *t) {
      std::string name(k.str());
      auto title = table_title("middleware", name);
      auto mt = v.as_table();
      if (!mt) {
        errors.push_back({pos_of(v.source(), path), title + " must be a table, not " + type_name(v)});
        continue;
      }
      TableReader r(*mt, title, path, errors);
      auto b = read_block(r, v, name, title, path);
      b.options = r.rest();
      cfg->middleware.push_back(std::move(b));
    }
  }

  if (auto t = top.table("frontends")) {
    for (auto&& [k, v] : *t) {
      std::string name(k.str());
      auto title = table_title("frontends", name);
      auto ft = v.as_table();
      if (!ft) {
        errors.push_back({pos_of(v.source(), path), title + " must be a table, not " + type_name(v)});
        continue;
      }
      TableReader r(*ft, title, path, errors);
      FrontendConfig f;
      f.block = read_block(r, v, name, title, path);
      r.string_array("models", f.models, nullptr);
      f.block.options = r.rest();
      cfg->frontends.push_back(std::move(f));
    }
  }

  std::map<std::string, std::string> model_owner;
  if (auto t = top.table("pipelines")) {
    for (auto&& [k, v] : *t) {
      std::string name(k.str());
      auto title = table_title("pipelines", name);
      auto pt = v.as_table();
      if (!pt) {
        errors.push_back({pos_of(v.source(), path), title + " must be a table, not " + type_name(v)});
        continue;
      }
      TableReader r(*pt, title, path, errors);
      PipelineConfig p;
      p.name = name;
      p.pos = pos_of(v.source(), path);
      if (!r.string_array("models", p.models, nullptr) || p.models.empty()) {
        if (!r.get("models"))
          errors.push_back({p.pos, title + " needs models = [\"...\"]: the model names it serves"});
        else if (p.models.empty())
          r.error(*r.get("models"), "models in " + title + " must not be empty");
      }
      for (const auto& m : p.models) {
        auto [it, fresh] = model_owner.emplace(m, name);
        if (!fresh)
          r.error(*r.get("models"),
                  "model '" + m + "' is served by both [pipelines." + it->second + "] and " + title);
      }
      if (!r.string_array("providers", p.providers, &p.provider_pos) || p.providers.empty()) {
        if (!r.get("providers"))
          errors.push_back({p.pos, title + " needs providers = [\"...\"]: the providers it may use"});
        else if (p.providers.empty())
          r.error(*r.get("providers"), "providers in " + title + " must not be empty");
      }
      r.string_array("middleware", p.middleware, &p.middleware_pos);
      if (auto rt = r.table("retry")) {
        TableReader rr(*rt, title + " retry", path, errors);
        auto& pol = p.policy;
        rr.integer("max_retries", pol.max_retries, 0, 100);
        auto ms = [&](const char* key, std::chrono::milliseconds& out, int64_t min, int64_t max) {
          int64_t v = out.count();
          if (rr.integer(key, v, min, max)) out = std::chrono::milliseconds(v);
        };
        ms("backoff_base_ms", pol.backoff_base, 1, 600'000);
        ms("backoff_max_ms", pol.backoff_max, 1, 3'600'000);
        ms("max_retry_after_ms", pol.max_retry_after, 0, 3'600'000);
        ms("deadline_ms", pol.deadline, 0, 3'600'000);
        rr.integer("stream_hold_chunks", pol.stream_hold_chunks, 0, 10'000);
        rr.finish();
      }
      if (auto et = r.table("on_error")) {
        TableReader er(*et, title + " on_error", path, errors);
        for (size_t i = 0; i < resilience::kErrorClasses; ++i) {
          auto cls = static_cast<resilience::ErrorClass>(i);
          std::string action;
          if (!er.string(resilience::name(cls), action)) continue;
          if (auto a = resilience::action_from_name(action))
            p.policy.actions[i] = *a;
          else
            er.error(*er.get(resilience::name(cls)),
                     std::string(resilience::name(cls)) + " in " + title +
                         " on_error must be \"retry\", \"failover\" or \"return\", not \"" + action + "\"");
        }
        er.finish();
      }

      p.router.name = name + ".router";
      p.router.title = "the router of " + title;
      p.router.plugin = "priority";
      p.router.pos = p.pos;
      if (auto rn = r.get("router")) {
        p.router.pos = pos_of(rn->source(), path);
        if (rn->is_string()) {
          p.router.plugin = rn->as_string()->get();
        } else if (auto rt = rn->as_table()) {
          TableReader rr(*rt, title + " router", path, errors);
          p.router = read_block(rr, *rn, name + ".router", "the router of " + title, path);
          if (!rt->get("plugin"))
            errors.push_back({p.router.pos, "router in " + title + " needs plugin = \"...\""});
          p.router.options = rr.rest();
        } else {
          r.wrong_type("router", *rn, "a string or a table with plugin = \"...\"");
        }
      }
      r.finish();
      cfg->pipelines.push_back(std::move(p));
    }
  }
  top.finish();

  if (cfg->pipelines.empty() && errors.empty())
    errors.push_back(
        {SourcePos{path, 1, 1}, "no pipelines: add a [pipelines.NAME] table with models and providers"});

  // References between sections.
  for (const auto& p : cfg->pipelines) {
    for (size_t i = 0; i < p.providers.size(); ++i) {
      if (cfg->provider(p.providers[i])) continue;
      std::string defined;
      for (const auto& d : cfg->providers) defined += (defined.empty() ? "" : ", ") + d.block.name;
      errors.push_back({p.provider_pos[i], "provider '" + p.providers[i] + "' is not defined (defined: " +
                                               (defined.empty() ? "none" : defined) + "); add [providers." +
                                               p.providers[i] + "]"});
    }
  }

  if (errors.empty()) result.config = std::move(cfg);
  return result;
}

LoadResult load_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    LoadResult r;
    r.errors.push_back({SourcePos{path, 0, 0}, "cannot open the file: " + std::string(std::strerror(errno))});
    return r;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return load_string(ss.str(), path);
}

}  // namespace ferry::config
