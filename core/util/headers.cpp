#include "core/util/headers.h"

#include <algorithm>

namespace ferry::util {

bool iequals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           auto lower = [](char c) { return c >= 'A' && c <= 'Z' ? static_cast<char>(c + 32) : c; };
           return lower(x) == lower(y);
         });
}

const std::string* Headers::get(std::string_view name) const {
  for (const auto& e : entries_)
    if (iequals(e.name, name)) return &e.value;
  return nullptr;
}

void Headers::set(std::string_view name, std::string_view value, bool sensitive) {
  for (auto& e : entries_) {
    if (iequals(e.name, name)) {
      e.value = value;
      e.sensitive = sensitive;
      return;
    }
  }
  add(name, value, sensitive);
}

void Headers::add(std::string_view name, std::string_view value, bool sensitive) {
  entries_.push_back({std::string(name), std::string(value), sensitive});
}

bool Headers::remove(std::string_view name) {
  auto it =
      std::remove_if(entries_.begin(), entries_.end(), [&](const Entry& e) { return iequals(e.name, name); });
  bool removed = it != entries_.end();
  entries_.erase(it, entries_.end());
  return removed;
}

}  // namespace ferry::util
