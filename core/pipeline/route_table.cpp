#include "core/pipeline/route_table.h"

#include <algorithm>

#include "core/pipeline/runtime.h"

namespace ferry::pipeline {

std::string RouteTable::add(Route route) {
  for (const auto& r : routes_) {
    if (r.method == route.method && r.path == route.path && util::iequals(r.header, route.header))
      return "route " + route.method + " " + route.path +
             (route.header.empty() ? "" : " (with header " + route.header + ")") +
             " is claimed by both frontend '" + r.frontend->name + "' and frontend '" + route.frontend->name +
             "'";
  }
  // Routes that need a header are tried first: they are the more specific.
  auto at = route.header.empty() ? routes_.end()
                                 : std::find_if(routes_.begin(), routes_.end(),
                                                [](const Route& r) { return r.header.empty(); });
  routes_.insert(at, std::move(route));
  return {};
}

bool RouteTable::path_matches(std::string_view pattern, std::string_view path) {
  size_t p = 0, s = 0;
  // Backtracking point of the last '*': where it stands and what it took so far.
  size_t star = std::string_view::npos, taken = 0;
  while (s < path.size()) {
    if (p < pattern.size() && pattern[p] == '*') {
      star = p++;
      taken = s;
    } else if (p < pattern.size() && pattern[p] == path[s]) {
      ++p;
      ++s;
    } else if (star != std::string_view::npos && path[taken] != '/') {
      // Let the last '*' take one more character (never a '/'). Each '*'
      // only moves forward, so the work is bounded by pattern x path.
      p = star + 1;
      s = ++taken;
    } else {
      return false;
    }
  }
  while (p < pattern.size() && pattern[p] == '*') ++p;
  return p == pattern.size();
}

RouteTable::Match RouteTable::find(std::string_view method, std::string_view path,
                                   const util::Headers& headers) const {
  Match m;
  for (const auto& r : routes_) {
    if (!path_matches(r.path, path)) continue;
    if (!r.header.empty() && !headers.get(r.header)) continue;
    if (r.method == method) {
      m.route = &r;
      m.allowed.clear();
      return m;
    }
    if (m.allowed.find(r.method) == std::string::npos)
      m.allowed += (m.allowed.empty() ? "" : ", ") + r.method;
  }
  return m;
}

}  // namespace ferry::pipeline
