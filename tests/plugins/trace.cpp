// trace: a test middleware that leaves a mark on everything it sees, so tests
// can prove which hooks ran and in what order:
//   on_request appends `name` to the request's "x_trace" array (the upstream sees it),
//   on_response / on_chunk append `name` to the answer's or chunk's "x_trace",
//   on_complete logs "trace NAME complete status=S stream=B",
//   on_event logs "trace NAME saw EVENT provider=P to=Q model=M".
// Options: respond_status (short-circuit with that status), pause_ms (return
// PAUSE from on_request and resume from a timer).
#include <string>

#include <ferry/plugin.hpp>

namespace {

using ferry::sdk::Context;
using ferry::sdk::Json;
using ferry::sdk::Status;

void mark(Json& doc, const std::string& name) {
  if (doc.type("/x_trace") != FERRY_JSON_ARRAY) doc.set("/x_trace", "[]");
  doc.set("/x_trace/-", ferry::sdk::json_quote(name));
}

class Trace final : public ferry::sdk::Middleware {
 public:
  explicit Trace(ferry::sdk::Config& c) {
    c.reject_unknown_keys({"name", "respond_status", "pause_ms"});
    name_ = c.required_string("/name");
    respond_status_ = static_cast<int>(c.integer("/respond_status", 0, 0, 599));
    pause_ns_ = static_cast<uint64_t>(c.integer("/pause_ms", 0, 0, 60'000)) * 1'000'000;
  }

  Status on_request(Context& ctx, Json& req) override {
    mark(req, name_);
    // A tag each trace extends: proves tags travel between plugins (1.2).
    auto via = ctx.tag("via");
    ctx.set_tag("via", via ? std::string(*via) + "," + name_ : name_);
    if (respond_status_)
      return ctx.respond_error(respond_status_, "invalid_request_error", "refused by trace " + name_);
    if (pause_ns_) {
      ctx.schedule(pause_ns_, [ctx](bool cancelled) mutable {
        if (!cancelled) ctx.resume(Status::kContinue);
      });
      return Status::kPause;
    }
    return Status::kContinue;
  }
  Status on_response(Context&, Json& resp) override {
    mark(resp, name_);
    return Status::kContinue;
  }
  Status on_chunk(Context&, Json& chunk) override {
    mark(chunk, name_);
    return Status::kContinue;
  }
  void on_event(const ferry_event& e) override {
    ferry::sdk::log(ferry::sdk::LogLevel::kInfo, "trace " + name_ + " saw " +
                                                     std::string(ferry::sdk::sv(e.name)) +
                                                     " provider=" + std::string(ferry::sdk::sv(e.provider)) +
                                                     " to=" + std::string(ferry::sdk::sv(e.to_provider)) +
                                                     " model=" + std::string(ferry::sdk::sv(e.model)));
  }
  void on_complete(Context& ctx, const ferry_request_summary& s) override {
    ctx.log(ferry::sdk::LogLevel::kInfo, "trace " + name_ + " complete status=" + std::to_string(s.status) +
                                             " stream=" + (s.stream ? "true" : "false"));
  }

 private:
  std::string name_;
  int respond_status_ = 0;
  uint64_t pause_ns_ = 0;
};

}  // namespace

FERRY_MIDDLEWARE_PLUGIN(Trace, "trace", "1.0.0")
