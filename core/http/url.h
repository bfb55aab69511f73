#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace ferry::http {

struct Url {
  bool tls = false;
  std::string host;  // without brackets for IPv6
  uint16_t port = 0;
  std::string target;  // path and query, at least "/"

  // "https://api.openai.com:443" - identifies a connection pool.
  std::string origin() const;
};

// Accepts http:// and https:// URLs; nullopt (and a reason) for anything else.
std::optional<Url> parse_url(std::string_view text, std::string* error = nullptr);

}  // namespace ferry::http
