#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "core/util/headers.h"

namespace ferry::pipeline {

struct Frontend;

// Which frontend serves a client request: method + path (and, for routes that
// name one, a header the request must carry) -> a frontend instance and the
// index of its route. Built once with the Runtime; read by every worker.
class RouteTable {
 public:
  struct Route {
    std::string method;
    std::string path;    // may hold '*': any run of characters but '/'
    std::string header;  // empty: none required
    const Frontend* frontend = nullptr;
    size_t index = 0;  // in the frontend's routes() array
  };
  struct Match {
    const Route* route = nullptr;  // null: no route for this method and path
    // Methods the path is served with, when it matched a path but not the
    // method ("GET, POST"); empty otherwise.
    std::string allowed;
  };

  // Adds a frontend's route; returns a message when another frontend already
  // claims the same method, path and header.
  std::string add(Route route);
  Match find(std::string_view method, std::string_view path, const util::Headers& headers) const;
  const std::vector<Route>& routes() const { return routes_; }

  // '*' in `pattern` matches any run of characters but '/'.
  static bool path_matches(std::string_view pattern, std::string_view path);

 private:
  std::vector<Route> routes_;  // routes with a header first, then in the order added
};

}  // namespace ferry::pipeline
