#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace ferry::util {

bool iequals(std::string_view a, std::string_view b);

// A small ordered header list with case-insensitive lookup. Requests carry a
// dozen headers at most, so a vector beats a map.
class Headers {
 public:
  struct Entry {
    std::string name;
    std::string value;
    bool sensitive = false;  // never logged (API keys)
  };

  const std::string* get(std::string_view name) const;
  // Replaces an existing header of that name, else appends.
  void set(std::string_view name, std::string_view value, bool sensitive = false);
  void add(std::string_view name, std::string_view value, bool sensitive = false);
  bool remove(std::string_view name);

  auto begin() const { return entries_.begin(); }
  auto end() const { return entries_.end(); }
  size_t size() const { return entries_.size(); }
  bool empty() const { return entries_.empty(); }
  void clear() { entries_.clear(); }

 private:
  std::vector<Entry> entries_;
};

}  // namespace ferry::util
