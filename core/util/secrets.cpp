#include "core/util/secrets.h"

#include <ferry/secrets.hpp>

#include <algorithm>
#include <mutex>
#include <shared_mutex>
#include <vector>

namespace ferry::secrets {
namespace {

std::shared_mutex& mutex() {
  static std::shared_mutex mu;
  return mu;
}
std::vector<std::string>& known() {
  static std::vector<std::string> values;
  return values;
}

}  // namespace

void remember(std::string_view value) {
  if (value.size() < 8) return;
  std::unique_lock lock(mutex());
  auto& values = known();
  if (std::find(values.begin(), values.end(), value) != values.end()) return;
  values.emplace_back(value);
  // Longest first: a key that contains another is masked whole.
  std::sort(values.begin(), values.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
}

std::string scrub(std::string_view text) {
  std::string out(text);
  {
    std::shared_lock lock(mutex());
    for (const auto& secret : known()) {
      for (size_t at = out.find(secret); at != std::string::npos; at = out.find(secret, at + 10))
        out.replace(at, secret.size(), "[REDACTED]");
    }
  }
  return sdk::mask_key_shaped(out);
}

}  // namespace ferry::secrets
