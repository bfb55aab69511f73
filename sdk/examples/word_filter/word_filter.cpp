// word-filter: refuses requests whose messages contain a banned word, and
// tags every answer it lets through with a response header.
//
// A complete third-party plugin: one class, one export macro, nothing but the
// Ferry SDK headers.
#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::Status;

std::string lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

class WordFilter final : public ferry::sdk::Middleware {
 public:
  // Reads and checks the plugin's TOML block; errors are reported at their
  // TOML position by the host.
  explicit WordFilter(ferry::sdk::Config& config) {
    config.reject_unknown_keys({"banned", "tag"});
    for (const auto& w : config.string_list("/banned")) banned_.push_back(lower(w));
    if (banned_.empty()) config.error("/banned", "needs at least one word");
    tag_ = config.string("/tag", "word-filter");
  }

  Status on_request(Context& ctx, Json& request) override {
    for (size_t i = 0, n = request.size("/messages"); i < n; ++i) {
      auto content = request.string("/messages/" + std::to_string(i) + "/content");
      if (!content) continue;
      std::string text = lower(*content);
      for (const auto& word : banned_) {
        if (text.find(word) != std::string::npos)
          return ctx.respond_error(400, "invalid_request_error",
                                   "message contains the banned word '" + word + "'", "banned_word");
      }
    }
    ctx.set_response_header("x-word-filter", tag_);
    return Status::kContinue;
  }

 private:
  std::vector<std::string> banned_;
  std::string tag_;
};

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(WordFilter, "word-filter", "1.0.0")
