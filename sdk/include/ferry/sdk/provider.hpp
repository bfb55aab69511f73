// ferry/sdk/provider.hpp - Provider adapters: the upstream request they build, the sink they deliver to,
// stream parsers. Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in order.
#ifndef FERRY_SDK_PROVIDER_HPP
#define FERRY_SDK_PROVIDER_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

// The upstream HTTP request a provider builds.
class Upstream {
 public:
  explicit Upstream(ferry_upstream* up) : up_(up) {}
  Upstream& method(std::string_view m) {
    host().upstream_set_method(up_, view(m));
    return *this;
  }
  Upstream& url(std::string_view u) {
    host().upstream_set_url(up_, view(u));
    return *this;
  }
  Upstream& header(std::string_view name, std::string_view value) {
    host().upstream_set_header(up_, view(name), view(value), 0);
    return *this;
  }
  // A header whose value the host never logs (API keys).
  Upstream& secret_header(std::string_view name, std::string_view value) {
    host().upstream_set_header(up_, view(name), view(value), 1);
    return *this;
  }
  Upstream& body(std::string_view b) {
    host().upstream_set_body(up_, view(b));
    return *this;
  }
  Upstream& body(const Json& doc) {
    host().upstream_set_body_json(up_, doc.handle());
    return *this;
  }
  Upstream& streaming(bool s) {
    host().upstream_set_streaming(up_, s ? 1 : 0);
    return *this;
  }
  // This upstream was given the client's native body in `dialect` (1.3): its
  // answer may go back to the client as it came.
  Upstream& dialect(std::string_view d) {
    host().upstream_set_dialect(up_, view(d));
    return *this;
  }
  // How the streamed answer is framed (1.3): FERRY_FRAMING_SSE (default),
  // FERRY_FRAMING_NDJSON (StreamParser::on_event per line) or
  // FERRY_FRAMING_RAW (StreamParser::on_bytes).
  Upstream& framing(ferry_framing f) {
    host().upstream_set_framing(up_, f);
    return *this;
  }
  // The client's request cannot go to this provider (1.3): its error, as the
  // client's (class FERRY_ERROR_CLASS_CLIENT unless said), never held against
  // the provider. `return up.refuse(...)` from build_request.
  Status refuse(int http_status, std::string_view type, std::string_view message,
                ferry_error_class cls = FERRY_ERROR_CLASS_CLIENT, std::string_view code = {}) {
    ferry_upstream_error e{sizeof e, http_status, cls, view(type), view(code), view(message), 0};
    host().upstream_refuse(up_, &e);
    return Status::kInvalidArgument;
  }

 private:
  ferry_upstream* up_;
};

// Where a provider delivers canonical (OpenAI-format) results. A serve()
// provider may keep a copy and use it from any thread until it finishes.
class Sink {
 public:
  explicit Sink(ferry_sink* sink) : sink_(sink) {}
  Status response(std::string_view json) {
    return static_cast<Status>(host().sink_response(sink_, view(json)));
  }
  Status chunk(std::string_view json) { return static_cast<Status>(host().sink_chunk(sink_, view(json))); }
  Status done() { return static_cast<Status>(host().sink_done(sink_)); }
  Status error(int http_status, std::string_view type, std::string_view message) {
    return static_cast<Status>(host().sink_error(sink_, http_status, view(type), view(message)));
  }
  // An error with its class (which decides retry, failover or return), a
  // code and when to try again (1.3).
  Status fail(int http_status, ferry_error_class cls, std::string_view type, std::string_view message,
              std::string_view code = {}, uint64_t retry_after_ms = 0) {
    ferry_upstream_error e{sizeof e, http_status, cls, view(type), view(code), view(message), retry_after_ms};
    return static_cast<Status>(host().sink_fail(sink_, &e));
  }
  ferry_sink* handle() const { return sink_; }

 private:
  ferry_sink* sink_;
};

struct HttpResponse {
  int status;
  std::string_view body;
  Json json;  // the body, parsed on first use
  const ferry_headers* headers;
  std::optional<std::string_view> header(std::string_view name) const {
    ferry_view out{};
    if (host().headers_get(headers, view(name), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
};

struct SseEvent {
  std::string_view event;
  std::string_view data;
  std::string_view id;
  Json json;  // data, parsed on first use
};

// Per-stream parse state of a provider; one per upstream stream.
// A provider that overrides on_end or on_bytes names its parser type
// (`using stream_type = MyParser;`) so the wrapper gives the host those hooks.
class StreamParser {
 public:
  virtual ~StreamParser() = default;
  virtual Status on_event(Context& ctx, const SseEvent& event, Sink& sink) = 0;
  // The upstream's body ended with the stream still open (1.3): a dialect
  // whose streams end there calls sink.done(); by default it was cut short.
  virtual Status on_end(Context&, Sink&) { return kOk; }
  // FERRY_FRAMING_RAW (1.3): the bytes as they came, split anywhere.
  virtual Status on_bytes(Context&, std::string_view /*bytes*/, Sink&) { return Status::kUnsupported; }
};

class Provider : public detail::Identity {
 public:
  virtual ~Provider() = default;
  virtual Status build_request(Context&, const Json& /*request*/, Upstream&) { return Status::kUnsupported; }
  virtual Status parse_response(Context&, const HttpResponse&, Sink&) { return Status::kUnsupported; }
  virtual std::unique_ptr<StreamParser> open_stream(Context&) { return nullptr; }
  virtual Status serve(Context&, const Json& /*request*/, Sink&) { return Status::kUnsupported; }
  // A cheap request for active health checks (ABI 1.1); 2xx means healthy.
  virtual Status build_probe(Upstream&) { return Status::kUnsupported; }
};

}  // namespace ferry::sdk

#endif  // FERRY_SDK_PROVIDER_HPP
