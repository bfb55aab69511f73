// timeout: deadlines per pipeline and per model, set by middleware so that
// operators can tighten them without touching the pipelines' retry blocks.
// The deadline bounds everything up to the first byte to the client (all
// attempts, retries and backoff included); past it the answer is 504
// deadline_exceeded. It only ever shortens a deadline already in force (the
// pipeline's deadline_ms or the client's x-ferry-deadline-ms).
#include <fnmatch.h>

#include <string>
#include <utility>
#include <vector>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::Status;

class Timeout final : public ferry::sdk::Middleware {
 public:
  explicit Timeout(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"deadline_ms", "stream_deadline_ms", "models"});
    deadline_ms_ = c.integer("/deadline_ms", 0, 0, 3'600'000);
    stream_deadline_ms_ = c.integer("/stream_deadline_ms", 0, 0, 3'600'000);
    for (const auto& model : c.keys("/models")) {
      std::string at = "/models/";
      for (char ch : model) at += ch == '~' ? "~0" : ch == '/' ? "~1" : std::string(1, ch);
      models_.emplace_back(model, c.integer(at, 0, 1, 3'600'000));
    }
    if (!deadline_ms_ && !stream_deadline_ms_ && models_.empty())
      c.error("", "set deadline_ms, stream_deadline_ms or models = { \"name-or-glob\" = ms }");
  }

  Status on_request(Context& ctx, Json&) override {
    int64_t ms = ctx.streaming() && stream_deadline_ms_ ? stream_deadline_ms_ : deadline_ms_;
    std::string model(ctx.model());
    for (const auto& [pattern, limit] : models_)
      if (fnmatch(pattern.c_str(), model.c_str(), 0) == 0) {
        ms = limit;  // the first matching model entry, in config order
        break;
      }
    if (ms > 0) ctx.set_deadline(static_cast<uint64_t>(ms));
    return Status::kContinue;
  }

 private:
  int64_t deadline_ms_ = 0;
  int64_t stream_deadline_ms_ = 0;  // to the first byte of a stream
  std::vector<std::pair<std::string, int64_t>> models_;
};

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Timeout, "timeout", "1.0.0")
