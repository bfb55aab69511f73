// frontend.hpp - the C++ wrapper for frontend plugins (ABI 1.3). Included by
// plugin.hpp; not meant to be included on its own.
//
// A frontend is a client dialect. It lists its routes, decodes each request
// into the canonical one (OpenAI chat completions or embeddings, edited in
// place) and encodes canonical answers, chunks and errors back:
//
//   class Door : public ferry::sdk::Frontend {
//    public:
//     explicit Door(ferry::sdk::Config&) {}
//     std::span<const ferry_route> routes() const override { return kRoutes; }
//     Status decode(Context&, const Inbound&, Json& request, Output&) override;
//     Status response(Context&, const Json& response, Output&) override;
//     Status error(Context&, const ErrorInfo&, Output&) override;
//   };
//   FERRY_FRONTEND_PLUGIN(Door, "door", "1.0.0")
//
// Per-answer state (a stream's open content block, say) lives in an Encoder
// returned by new_encoder(); without one the hooks run on the frontend itself,
// which is then shared by every request and must not change.
#ifndef FERRY_SDK_FRONTEND_HPP
#define FERRY_SDK_FRONTEND_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

// A client's request as it arrived (valid during decode).
struct Inbound {
  size_t route;  // index into routes()
  std::string_view method;
  std::string_view path;
  std::string_view query;
  std::string_view body;
  const ferry_headers* headers;
  std::optional<std::string_view> header(std::string_view name) const {
    ferry_view out{};
    if (host().headers_get(headers, view(name), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
};

// An error to encode. Types and codes are the gateway's (OpenAI's).
struct ErrorInfo {
  int status;
  std::string_view type;
  std::string_view code;
  std::string_view message;
  std::string_view retry_after;  // seconds, or empty
  bool in_stream;                // an event of a stream under way, not a status
};

// Where a frontend writes its dialect.
class Output {
 public:
  explicit Output(ferry_output* out) : out_(out) {}
  Status header(std::string_view name, std::string_view value) {
    return static_cast<Status>(host().output_header(out_, view(name), view(value)));
  }
  Status body(int status, std::string_view content_type, std::string_view bytes) {
    return static_cast<Status>(host().output_body(out_, status, view(content_type), view(bytes)));
  }
  Status json(int status, std::string_view json_text) { return body(status, "application/json", json_text); }
  // One Server-Sent Event; an empty name writes no "event:" line.
  Status event(std::string_view name, std::string_view data) {
    return static_cast<Status>(host().output_event(out_, view(name), view(data)));
  }
  // decode only: the request is the client's error; the host answers it
  // through error(). Returns kInvalidArgument so decode can `return out.refuse(...)`.
  Status refuse(int status, std::string_view type, std::string_view message) {
    host().output_error(out_, status, view(type), view(message));
    return Status::kInvalidArgument;
  }

 private:
  ferry_output* out_;
};

// Encodes one answer. Default: nothing for chunks and the end of a stream.
class Encoder {
 public:
  virtual ~Encoder() = default;
  virtual Status response(Context&, const Json& /*response*/, Output&) { return Status::kUnsupported; }
  virtual Status chunk(Context&, const Json& /*chunk*/, Output&) { return kOk; }
  virtual Status end(Context&, Output&) { return kOk; }
  virtual Status error(Context&, const ErrorInfo&, Output&) { return Status::kUnsupported; }
  // An upstream's own bytes in this dialect (sdk/ABI.md R21): one SSE event,
  // ahead of the canonical chunks translated from it, or (`event` empty) a
  // whole answer's body. Only called for an encoder type that overrides it.
  virtual Status native(Context&, std::string_view /*event*/, std::string_view /*data*/, Output&) {
    return Status::kUnsupported;
  }
};

// A frontend whose answers pass through from upstreams of its own dialect
// names its encoder type (`using encoder_type = MyEncoder;`) so the wrapper
// can tell the host it takes native bytes (encode_native).
class Frontend : public Encoder, public detail::Identity {
 public:
  virtual std::span<const ferry_route> routes() const = 0;
  // kContinue: the route's operation is served with `request`, now canonical.
  // kRespond: answered through `out`. out.refuse(...): the client's error.
  virtual Status decode(Context&, const Inbound&, Json& request, Output& out) = 0;
  virtual std::unique_ptr<Encoder> new_encoder(Context&) { return nullptr; }
};

namespace detail {

struct FrontendGlue {
  static Encoder& target(ferry_instance* i, ferry_encoder* e) {
    if (e) return *reinterpret_cast<Encoder*>(e);
    return *self<Frontend>(i);
  }
  static ferry_status routes(ferry_instance* i, const ferry_route** out, size_t* count) noexcept {
    *out = nullptr;
    *count = 0;
    return guarded_as<Frontend>(i, "routes", [&] {
      auto r = self<Frontend>(i)->routes();
      *out = r.data();
      *count = r.size();
      return kOk;
    });
  }
  static ferry_status decode(ferry_instance* i, ferry_ctx* c, const ferry_inbound* in, ferry_json* req,
                             ferry_output* o) noexcept {
    return guarded_as<Frontend>(i, "decode", [&] {
      Context ctx(c);
      Json request(req);
      Output out(o);
      Inbound inbound{in->route, sv(in->method), sv(in->path), sv(in->query), sv(in->body), in->headers};
      return self<Frontend>(i)->decode(ctx, inbound, request, out);
    });
  }
  static ferry_status encoder_open(ferry_instance* i, ferry_ctx* c, ferry_encoder** out) noexcept {
    *out = nullptr;
    return guarded_as<Frontend>(i, "new_encoder", [&] {
      Context ctx(c);
      *out = reinterpret_cast<ferry_encoder*>(self<Frontend>(i)->new_encoder(ctx).release());
      return kOk;
    });
  }
  static void encoder_close(ferry_instance*, ferry_encoder* e) noexcept {
    delete reinterpret_cast<Encoder*>(e);
  }
  static ferry_status encode_response(ferry_instance* i, ferry_encoder* e, ferry_ctx* c, const ferry_json* r,
                                      ferry_output* o) noexcept {
    return guarded_as<Frontend>(i, "encode_response", [&] {
      Context ctx(c);
      Output out(o);
      return target(i, e).response(ctx, Json(r), out);
    });
  }
  static ferry_status encode_chunk(ferry_instance* i, ferry_encoder* e, ferry_ctx* c, const ferry_json* chunk,
                                   ferry_output* o) noexcept {
    return guarded_as<Frontend>(i, "encode_chunk", [&] {
      Context ctx(c);
      Output out(o);
      return target(i, e).chunk(ctx, Json(chunk), out);
    });
  }
  static ferry_status encode_end(ferry_instance* i, ferry_encoder* e, ferry_ctx* c,
                                 ferry_output* o) noexcept {
    return guarded_as<Frontend>(i, "encode_end", [&] {
      Context ctx(c);
      Output out(o);
      return target(i, e).end(ctx, out);
    });
  }
  static ferry_status encode_native(ferry_instance* i, ferry_encoder* e, ferry_ctx* c, ferry_view event,
                                    ferry_view data, ferry_output* o) noexcept {
    return guarded_as<Frontend>(i, "encode_native", [&] {
      Context ctx(c);
      Output out(o);
      return target(i, e).native(ctx, sv(event), sv(data), out);
    });
  }
  static ferry_status encode_error(ferry_instance* i, ferry_encoder* e, ferry_ctx* c,
                                   const ferry_error_info* err, ferry_output* o) noexcept {
    return guarded_as<Frontend>(i, "encode_error", [&] {
      Context ctx(c);
      Output out(o);
      ErrorInfo info{err->http_status, sv(err->type),        sv(err->code),
                     sv(err->message), sv(err->retry_after), err->in_stream != 0};
      return target(i, e).error(ctx, info, out);
    });
  }
};

template <class T, class = void>
struct encoder_type_of {
  using type = T;
};
template <class T>
struct encoder_type_of<T, std::void_t<typename T::encoder_type>> {
  using type = typename T::encoder_type;
};

template <class T>
const ferry_frontend_vtable* frontend_vtable() {
  static const ferry_frontend_vtable vt = [] {
    ferry_frontend_vtable v{};
    v.struct_size = sizeof v;
    v.create = &create<T, Frontend>;
    v.destroy = &destroy<Frontend>;
    v.routes = &FrontendGlue::routes;
    v.decode = &FrontendGlue::decode;
    // No per-answer state unless T makes encoders: the host then skips both calls.
    if constexpr (!std::is_same_v<decltype(&T::new_encoder), decltype(&Frontend::new_encoder)>) {
      v.encoder_open = &FrontendGlue::encoder_open;
      v.encoder_close = &FrontendGlue::encoder_close;
    }
    v.encode_response = &FrontendGlue::encode_response;
    v.encode_chunk = &FrontendGlue::encode_chunk;
    v.encode_end = &FrontendGlue::encode_end;
    v.encode_error = &FrontendGlue::encode_error;
    using E = typename encoder_type_of<T>::type;
    if constexpr (!std::is_same_v<decltype(&E::native), decltype(&Encoder::native)>)
      v.encode_native = &FrontendGlue::encode_native;
    return v;
  }();
  return &vt;
}

}  // namespace detail
}  // namespace ferry::sdk

#endif  // FERRY_SDK_FRONTEND_HPP
