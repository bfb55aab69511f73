// logging: one structured JSON line per request, written through the host's
// asynchronous logger when the request completes (streamed or not, failed or
// not), so it never blocks a worker.
#include <string>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::JsonWriter;
using ferry::sdk::LogLevel;
using ferry::sdk::sv;

class Logging final : public ferry::sdk::Middleware {
 public:
  explicit Logging(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"level"});
    std::string level = c.string("/level", "info");
    if (level == "debug")
      level_ = LogLevel::kDebug;
    else if (level == "info")
      level_ = LogLevel::kInfo;
    else if (level == "warn")
      level_ = LogLevel::kWarn;
    else
      c.error("/level", "must be debug, info or warn");
  }

  void on_complete(ferry::sdk::Context&, const ferry_request_summary& s) override {
    JsonWriter w;
    w.begin_object();
    w.key("event").value("request");
    w.key("request_id").value(sv(s.request_id));
    w.key("pipeline").value(sv(s.pipeline));
    w.key("model").value(sv(s.model));
    w.key("provider").value(sv(s.provider));
    w.key("providers_tried").begin_array();
    std::string_view tried = sv(s.providers_tried);
    while (!tried.empty()) {
      auto comma = tried.find(',');
      w.value(tried.substr(0, comma));
      tried = comma == std::string_view::npos ? std::string_view() : tried.substr(comma + 1);
    }
    w.end_array();
    w.key("attempts").value(static_cast<int64_t>(s.attempts));
    w.key("status").value(s.status);
    w.key("stream").value(s.stream != 0);
    w.key("latency_ms").value(static_cast<double>(s.latency_us) / 1000.0);
    w.key("ttfb_ms").value(static_cast<double>(s.ttfb_us) / 1000.0);
    w.key("tokens_in");
    if (s.prompt_tokens >= 0)
      w.value(s.prompt_tokens);
    else
      w.null();
    w.key("tokens_out");
    if (s.completion_tokens >= 0)
      w.value(s.completion_tokens);
    else
      w.null();
    if (s.error.len) w.key("error").value(sv(s.error));
    w.end_object();
    ferry::sdk::log(level_, w.str());
  }

 private:
  LogLevel level_ = LogLevel::kInfo;
};

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Logging, "logging", "1.0.0")
