// ferry/sdk/config.hpp - A plugin's configuration: typed reads that report mistakes at their TOML position.
// Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in order.
#ifndef FERRY_SDK_CONFIG_HPP
#define FERRY_SDK_CONFIG_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

// Thrown from a plugin constructor to reject its configuration; the host
// reports it at the TOML position of `pointer`.
struct ConfigError : std::runtime_error {
  ConfigError(std::string pointer_, const std::string& message)
      : std::runtime_error(message), pointer(std::move(pointer_)) {}
  std::string pointer;
};

// A plugin's TOML table, as JSON. Typed getters report wrong types and missing
// required keys at their TOML position; reject_unknown_keys() catches typos.
class Config {
 public:
  explicit Config(const ferry_json* doc) : json_(doc) {}

  const Json& json() const { return json_; }
  bool failed() const { return failed_; }

  void error(std::string_view pointer, std::string_view message) {
    failed_ = true;
    host().config_error(json_.handle(), view(pointer), view(message));
  }

  std::string string(std::string_view pointer, std::string_view fallback = {}) {
    auto t = json_.type(pointer);
    if (t == FERRY_JSON_MISSING) return std::string(fallback);
    if (t != FERRY_JSON_STRING) {
      error(pointer, "expected a string");
      return std::string(fallback);
    }
    return std::string(*json_.string(pointer));
  }
  std::string required_string(std::string_view pointer) {
    if (!json_.has(pointer)) {
      error(pointer, "is required (a string)");
      return {};
    }
    return string(pointer);
  }
  double number(std::string_view pointer, double fallback, double min, double max) {
    auto t = json_.type(pointer);
    if (t == FERRY_JSON_MISSING) return fallback;
    auto n = json_.number(pointer);
    if (t != FERRY_JSON_NUMBER || !n) {
      error(pointer, "expected a number");
      return fallback;
    }
    if (*n < min || *n > max) {
      auto text = [](double d) {
        char buf[32];
        auto [end, ec] = std::to_chars(buf, buf + sizeof buf, d);
        return std::string(buf, static_cast<size_t>(end - buf));
      };
      error(pointer, "must be between " + text(min) + " and " + text(max) + ", not " + text(*n));
      return fallback;
    }
    return *n;
  }
  int64_t integer(std::string_view pointer, int64_t fallback, int64_t min, int64_t max) {
    return static_cast<int64_t>(
        number(pointer, static_cast<double>(fallback), static_cast<double>(min), static_cast<double>(max)));
  }
  bool boolean(std::string_view pointer, bool fallback) {
    auto t = json_.type(pointer);
    if (t == FERRY_JSON_MISSING) return fallback;
    if (t != FERRY_JSON_BOOL) {
      error(pointer, "expected true or false");
      return fallback;
    }
    return *json_.boolean(pointer);
  }
  std::vector<std::string> string_list(std::string_view pointer) {
    std::vector<std::string> out;
    auto t = json_.type(pointer);
    if (t == FERRY_JSON_MISSING) return out;
    if (t != FERRY_JSON_ARRAY) {
      error(pointer, "expected an array of strings");
      return out;
    }
    for (size_t i = 0, n = json_.size(pointer); i < n; ++i) {
      std::string item = std::string(pointer) + "/" + std::to_string(i);
      out.push_back(string(item));
    }
    return out;
  }
  // A router's pipeline and its providers, in order (ABI 1.1, R12).
  std::string pipeline_name() const { return std::string(json_.string("/$pipeline/name").value_or("")); }
  std::vector<std::string> pipeline_providers() const {
    std::vector<std::string> out;
    for (size_t i = 0, n = json_.size("/$pipeline/providers"); i < n; ++i)
      out.emplace_back(json_.string("/$pipeline/providers/" + std::to_string(i)).value_or(""));
    return out;
  }

  // A table of provider name -> number (weights, shares) in document order,
  // each name checked against the pipeline's providers (routers, ABI 1.1).
  std::vector<std::pair<std::string, double>> provider_numbers(std::string_view pointer, double min,
                                                               double max) {
    std::vector<std::pair<std::string, double>> out;
    auto providers = pipeline_providers();
    for (const auto& name : keys(pointer)) {
      std::string ptr = std::string(pointer) + "/" + name;
      double v = number(ptr, 0, min, max);
      if (!providers.empty() && std::find(providers.begin(), providers.end(), name) == providers.end())
        error(ptr, "'" + name + "' is not a provider of this pipeline");
      out.emplace_back(name, v);
    }
    return out;
  }

  // Keys of the object at pointer ("" for the top level).
  std::vector<std::string> keys(std::string_view pointer = "") const {
    std::vector<std::string> out;
    if (json_.type(pointer) != FERRY_JSON_OBJECT) return out;
    for (size_t i = 0, n = json_.size(pointer); i < n; ++i) out.emplace_back(*json_.key_at(pointer, i));
    return out;
  }
  // Reports every top-level key not in `known` (the host strips its own keys
  // before the plugin sees the table).
  void reject_unknown_keys(std::initializer_list<std::string_view> known) {
    for (const auto& k : keys()) {
      if (k.starts_with('$')) continue;  // the host's context, not an option
      bool found = false;
      for (auto kn : known) found = found || kn == k;
      if (!found) {
        std::string expected;
        for (auto kn : known) expected += (expected.empty() ? "" : ", ") + std::string(kn);
        error("/" + k,
              "unknown key '" + k + "'" + (expected.empty() ? "" : " (expected one of: " + expected + ")"));
      }
    }
  }

 private:
  Json json_;
  bool failed_ = false;
};

}  // namespace ferry::sdk

#endif  // FERRY_SDK_CONFIG_HPP
