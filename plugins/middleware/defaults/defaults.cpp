// defaults: edits requests on their way in. Fills request parameters the
// client left out, forces others, and adds headers to the upstream request
// and to the client's response.
#include <string>
#include <utility>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::Status;

// A top-level request key as a JSON pointer (RFC 6901 escaping).
std::string pointer_to(std::string_view key) {
  std::string p = "/";
  for (char c : key) {
    if (c == '~')
      p += "~0";
    else if (c == '/')
      p += "~1";
    else
      p.push_back(c);
  }
  return p;
}

using Pairs = std::vector<std::pair<std::string, std::string>>;

class Defaults final : public ferry::sdk::Middleware {
 public:
  explicit Defaults(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"params", "set", "upstream_headers", "response_headers"});
    params_ = values(c, "/params");
    set_ = values(c, "/set");
    for (const auto& k : c.keys("/upstream_headers"))
      upstream_.emplace_back(k, c.string("/upstream_headers/" + k));
    for (const auto& k : c.keys("/response_headers"))
      response_.emplace_back(k, c.string("/response_headers/" + k));
  }

  Status on_request(Context& ctx, Json& req) override {
    for (const auto& [ptr, value] : params_)
      if (!req.has(ptr)) req.set(ptr, value);
    for (const auto& [ptr, value] : set_) req.set(ptr, value);
    for (const auto& [name, value] : upstream_) ctx.set_upstream_header(name, value);
    for (const auto& [name, value] : response_) ctx.set_response_header(name, value);
    return Status::kContinue;
  }

 private:
  // Request pointer -> JSON text, for each key of a config table.
  static Pairs values(ferry::sdk::Config& c, const std::string& table) {
    Pairs out;
    for (const auto& k : c.keys(table)) {
      std::string key_ptr = table + pointer_to(k);
      out.emplace_back(pointer_to(k), std::string(c.json().raw(key_ptr).value_or("null")));
    }
    return out;
  }

  Pairs params_;
  Pairs set_;
  Pairs upstream_;
  Pairs response_;
};

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Defaults, "defaults", "1.0.0")
