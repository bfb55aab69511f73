#include "core/metrics/metrics.h"

#include <algorithm>
#include <map>
#include <mutex>
#include <sstream>
#include <vector>

namespace ferry::metrics {

Registry& Registry::global() {
  static Registry r;
  return r;
}

Registry::Series& Registry::series(std::string_view name, Kind kind) {
  {
    std::shared_lock lock(mu_);
    auto it = series_.find(std::string(name));
    if (it != series_.end()) return *it->second;
  }
  std::unique_lock lock(mu_);
  auto& slot = series_[std::string(name)];
  if (!slot) {
    slot = std::make_unique<Series>();
    slot->kind = kind;
  }
  return *slot;
}

void Registry::add(std::string_view name, double v) { series(name, Kind::kCounter).value.fetch_add(v); }
void Registry::set(std::string_view name, double v) { series(name, Kind::kGauge).value.store(v); }

void Registry::observe(std::string_view name, double v) {
  auto& s = series(name, Kind::kHistogram);
  s.value.fetch_add(v);
  s.count.fetch_add(1);
  for (size_t i = 0; i < kBuckets.size(); ++i)
    if (v <= kBuckets[i]) s.buckets[i].fetch_add(1);
}

namespace {
// Splits "name{a=\"b\"}" into "name" and "a=\"b\"".
std::pair<std::string, std::string> split(const std::string& series) {
  auto brace = series.find('{');
  if (brace == std::string::npos) return {series, ""};
  return {series.substr(0, brace), series.substr(brace + 1, series.size() - brace - 2)};
}
std::string with_label(const std::string& name, const std::string& labels, const std::string& extra) {
  std::string all = labels;
  if (!extra.empty()) all += (all.empty() ? "" : ",") + extra;
  return all.empty() ? name : name + "{" + all + "}";
}
}  // namespace

std::string Registry::render() const {
  std::map<std::string, std::vector<std::pair<std::string, const Series*>>> by_name;
  {
    std::shared_lock lock(mu_);
    for (const auto& [k, s] : series_) {
      auto [name, labels] = split(k);
      by_name[name].emplace_back(labels, s.get());
    }
  }
  std::ostringstream out;
  for (auto& [name, list] : by_name) {
    std::sort(list.begin(), list.end(), [](auto& a, auto& b) { return a.first < b.first; });
    auto kind = list.front().second->kind;
    out << "# TYPE " << name << ' '
        << (kind == Kind::kCounter ? "counter"
            : kind == Kind::kGauge ? "gauge"
                                   : "histogram")
        << '\n';
    for (const auto& [labels, s] : list) {
      if (kind != Kind::kHistogram) {
        out << with_label(name, labels, "") << ' ' << s->value.load() << '\n';
        continue;
      }
      for (size_t i = 0; i < kBuckets.size(); ++i) {
        std::ostringstream le;
        le << "le=\"" << kBuckets[i] << '"';
        out << with_label(name + "_bucket", labels, le.str()) << ' ' << s->buckets[i].load() << '\n';
      }
      out << with_label(name + "_bucket", labels, "le=\"+Inf\"") << ' ' << s->count.load() << '\n';
      out << with_label(name + "_sum", labels, "") << ' ' << s->value.load() << '\n';
      out << with_label(name + "_count", labels, "") << ' ' << s->count.load() << '\n';
    }
  }
  return out.str();
}

}  // namespace ferry::metrics
