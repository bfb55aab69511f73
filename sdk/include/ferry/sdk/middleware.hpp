// ferry/sdk/middleware.hpp - Middleware: per-request filters, admin requests and replies.
// Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in order.
#ifndef FERRY_SDK_MIDDLEWARE_HPP
#define FERRY_SDK_MIDDLEWARE_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

// Hooks of one request. Pass-through by default: override only what you need.
class Filter {
 public:
  virtual ~Filter() = default;
  virtual Status on_request(Context&, Json& /*request*/) { return Status::kContinue; }
  virtual Status on_response(Context&, Json& /*response*/) { return Status::kContinue; }
  virtual Status on_chunk(Context&, Json& /*chunk*/) { return Status::kContinue; }
  // Before each upstream attempt (1.2): kContinue, kSkip (try the next
  // provider) or kPause.
  virtual Status on_attempt(Context&, std::string_view /*provider*/) { return Status::kContinue; }
  virtual void on_complete(Context&, const ferry_request_summary&) {}
};

// An operator's request to a middleware (ABI 1.2): METHOD
// /admin/plugins/<middleware name><path> on the admin listener.
struct AdminRequest {
  std::string_view method;
  std::string_view path;  // "/keys/abc", or ""
  std::string_view query;
  std::string_view body;  // valid during on_admin only
};

// Where the answer goes: call send() exactly once, from any thread, now or
// later (copy the handle into a state callback).
class AdminReply {
 public:
  explicit AdminReply(ferry_admin_reply* r) : r_(r) {}
  void send(int status, std::string_view json_body) const { host().admin_reply(r_, status, view(json_body)); }
  void error(int status, std::string_view code, std::string_view message) const {
    JsonWriter w;
    w.begin_object().key("error").begin_object();
    w.key("message").value(message).key("type").value("invalid_request_error").key("code").value(code);
    w.end_object().end_object();
    send(status, w.str());
  }

 private:
  ferry_admin_reply* r_;
};

// One configured middleware block. Shared by all worker threads: either keep
// it immutable and override the hooks here, or return a per-request Filter
// from new_filter() (then the hooks run on that filter).
class Middleware : public Filter, public detail::Identity {
 public:
  virtual std::unique_ptr<Filter> new_filter(Context&) { return nullptr; }
  // A gateway event (failover, breaker, health; ABI 1.1). Any thread, concurrently.
  virtual void on_event(const ferry_event&) {}
  // An admin request (1.2), on the admin thread: answer through `reply` and
  // return kContinue. Anything else answers 500 (and `reply` must not be used).
  virtual Status on_admin(const AdminRequest&, AdminReply) { return Status::kUnsupported; }
};

}  // namespace ferry::sdk

#endif  // FERRY_SDK_MIDDLEWARE_HPP
