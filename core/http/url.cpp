#include "core/http/url.h"

#include <charconv>

namespace ferry::http {

std::string Url::origin() const {
  std::string h = host.find(':') != std::string::npos ? "[" + host + "]" : host;
  return std::string(tls ? "https://" : "http://") + h + ":" + std::to_string(port);
}

std::optional<Url> parse_url(std::string_view text, std::string* error) {
  auto fail = [&](const char* why) -> std::optional<Url> {
    if (error) *error = why;
    return std::nullopt;
  };
  Url u;
  if (text.starts_with("https://")) {
    u.tls = true;
    text.remove_prefix(8);
  } else if (text.starts_with("http://")) {
    text.remove_prefix(7);
  } else {
    return fail("URL must start with http:// or https://");
  }
  auto slash = text.find_first_of("/?");
  std::string_view authority = text.substr(0, slash);
  std::string_view target = slash == std::string_view::npos ? std::string_view() : text.substr(slash);
  if (!target.starts_with('/')) u.target.push_back('/');
  u.target.append(target);
  if (authority.find('@') != std::string_view::npos) return fail("credentials in URLs are not supported");
  std::string_view port_text;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return fail("unterminated IPv6 address");
    u.host = std::string(authority.substr(1, close - 1));
    if (close + 1 < authority.size()) {
      if (authority[close + 1] != ':') return fail("bad character after IPv6 address");
      port_text = authority.substr(close + 2);
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) port_text = authority.substr(colon + 1);
  }
  if (u.host.empty()) return fail("URL has no host");
  u.port = u.tls ? 443 : 80;
  if (!port_text.empty()) {
    unsigned p = 0;
    auto [end, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), p);
    if (ec != std::errc() || end != port_text.data() + port_text.size() || p == 0 || p > 65535)
      return fail("bad port in URL");
    u.port = static_cast<uint16_t>(p);
  }
  return u;
}

}  // namespace ferry::http
