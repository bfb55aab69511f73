#include "host/ferryd/frontend_writer.h"

#include "core/json/doc.h"
#include "core/log/log.h"
#include "core/pipeline/request_checks.h"

namespace ferry::host {

namespace asio = boost::asio;
using json::Value;

namespace {

ferry_view fv(std::string_view s) { return ferry_view{s.data(), s.size()}; }

std::string_view string_member(const Value& obj, const char* key) {
  const Value* v = pipeline::member(obj, key);
  return v && v->is_string() ? std::string_view(v->get_ref<const std::string&>()) : std::string_view();
}

// The canonical error body {"error":{"message","type","code"}} taken apart; a
// body of another shape (a plugin's own) is the message.
struct CanonicalError {
  std::string type = "server_error";
  std::string code;
  std::string message;
};
CanonicalError read_error(std::string_view body) {
  CanonicalError e;
  Value v;
  const Value* err = nullptr;
  if (json::parse(body, v, nullptr) && v.is_object()) err = pipeline::member(v, "error");
  if (err && err->is_object()) {
    if (auto t = string_member(*err, "type"); !t.empty()) e.type = t;
    e.code = string_member(*err, "code");
    e.message = string_member(*err, "message");
  } else {
    e.message = json::printable(body, 2000);
  }
  return e;
}

}  // namespace

FrontendWriter::~FrontendWriter() {
  const auto& vt = frontend_.plugin->vt();
  if (encoder_open_ && vt.encoder_close) vt.encoder_close(frontend_.plugin->instance(), encoder_);
}

ferry_encoder* FrontendWriter::encoder() {
  if (!encoder_open_) {
    encoder_open_ = true;
    const auto& vt = frontend_.plugin->vt();
    if (vt.encoder_open &&
        vt.encoder_open(frontend_.plugin->instance(), plugin::handle(&ctx_), &encoder_) != FERRY_OK)
      encoder_ = nullptr;
  }
  return encoder_;
}

ferry_status FrontendWriter::encode_error(int status, std::string_view type, std::string_view code,
                                          std::string_view message, std::string_view retry_after,
                                          bool in_stream, plugin::FrontendOutput& out) {
  ferry_error_info info{sizeof(ferry_error_info), status,           fv(type), fv(code), fv(message),
                        fv(retry_after),          in_stream ? 1 : 0};
  const auto& vt = frontend_.plugin->vt();
  return vt.encode_error(frontend_.plugin->instance(), encoder(), plugin::handle(&ctx_), &info,
                         plugin::handle(&out));
}

asio::awaitable<bool> FrontendWriter::send_output(plugin::FrontendOutput& out) {
  if (out.has_body) {
    util::Headers headers = out.headers;
    bool sent = co_await http_.send(out.status, out.content_type, out.body, headers);
    co_return sent;
  }
  if (!out.events.empty()) {
    start_stream(out.headers);
    http_.queue(out.events);
    http_.end_stream();
    bool sent = co_await http_.flush();
    co_return sent;
  }
  // The plugin wrote nothing it could send: a broken frontend, said plainly.
  std::string message = "frontend '" + frontend_.name + "' produced no answer";
  log::get().error("[{}] {}", ctx_.request_id, message);
  std::string body = pipeline::error_json(message, "server_error", "plugin_error");
  bool sent = co_await http_.send(500, "application/json", body, {});
  co_return sent;
}

asio::awaitable<bool> FrontendWriter::send_json(int status, std::string_view body,
                                                const util::Headers& headers) {
  plugin::FrontendOutput out;
  out.headers = headers;
  ferry_status st;
  if (status >= 400) {
    CanonicalError e = read_error(body);
    const std::string* retry_after = headers.get("retry-after");
    st = encode_error(status, e.type, e.code, e.message, retry_after ? *retry_after : std::string_view(),
                      false, out);
  } else {
    json::Doc doc = json::Doc::from_text(std::string(body));
    const auto& vt = frontend_.plugin->vt();
    st = vt.encode_response(frontend_.plugin->instance(), encoder(), plugin::handle(&ctx_),
                            plugin::handle(&doc), plugin::handle(&out));
  }
  if (st != FERRY_OK) {
    log::get().error("[{}] frontend '{}' could not encode a {} answer (status {})", ctx_.request_id,
                     frontend_.name, status, st);
    out = {};
  }
  bool sent = co_await send_output(out);
  co_return sent;
}

asio::awaitable<bool> FrontendWriter::send_error(int status, std::string_view type, std::string_view code,
                                                 std::string_view message, const util::Headers& headers) {
  plugin::FrontendOutput out;
  out.headers = headers;
  const std::string* retry_after = headers.get("retry-after");
  if (encode_error(status, type, code, message, retry_after ? *retry_after : std::string_view(), false,
                   out) != FERRY_OK) {
    log::get().error("[{}] frontend '{}' could not encode a {} error", ctx_.request_id, frontend_.name,
                     status);
    out = {};
  }
  bool sent = co_await send_output(out);
  co_return sent;
}

void FrontendWriter::begin_events(const util::Headers& headers) {
  stream_wanted_ = true;
  stream_headers_ = headers;
}

void FrontendWriter::start_stream(const util::Headers& extra) {
  if (stream_started_) return;
  stream_started_ = true;
  util::Headers headers = std::move(stream_headers_);
  for (const auto& h : extra) headers.set(h.name, h.value);
  http_.begin_stream("text/event-stream", headers);
}

void FrontendWriter::queue_output(plugin::FrontendOutput& out) {
  start_stream(out.headers);
  if (!out.events.empty()) http_.queue(out.events);
}

void FrontendWriter::queue_event(std::string_view data) {
  plugin::FrontendOutput& out = event_out_;
  out.reset();
  const auto& vt = frontend_.plugin->vt();
  auto* instance = frontend_.plugin->instance();
  ferry_status st = FERRY_OK;
  if (data == "[DONE]") {
    // Also after an error event: a dialect whose streams end with the error writes nothing here.
    if (vt.encode_end) st = vt.encode_end(instance, encoder(), plugin::handle(&ctx_), plugin::handle(&out));
  } else if (stream_failed_) {
    return;
  } else if (vt.encode_chunk) {
    chunk_.reset_text(data);
    st = vt.encode_chunk(instance, encoder(), plugin::handle(&ctx_), plugin::handle(&chunk_),
                         plugin::handle(&out));
    chunk_.clear_scratch();
  }
  if (st != FERRY_OK) {
    log::get().error("[{}] frontend '{}' could not encode a stream event (status {})", ctx_.request_id,
                     frontend_.name, st);
    stream_failed_ = true;
  }
  queue_output(out);
}

void FrontendWriter::queue_native(std::string_view event, std::string_view data) {
  plugin::FrontendOutput& out = event_out_;
  out.reset();
  const auto& vt = frontend_.plugin->vt();
  if (!vt.encode_native || stream_failed_) return;
  if (vt.encode_native(frontend_.plugin->instance(), encoder(), plugin::handle(&ctx_), fv(event), fv(data),
                       plugin::handle(&out)) != FERRY_OK) {
    log::get().error("[{}] frontend '{}' could not pass an upstream event through", ctx_.request_id,
                     frontend_.name);
    stream_failed_ = true;
  }
  queue_output(out);
}

asio::awaitable<bool> FrontendWriter::send_native(std::string_view body, const util::Headers& headers) {
  plugin::FrontendOutput out;
  out.headers = headers;
  const auto& vt = frontend_.plugin->vt();
  if (!vt.encode_native || vt.encode_native(frontend_.plugin->instance(), encoder(), plugin::handle(&ctx_),
                                            {}, fv(body), plugin::handle(&out)) != FERRY_OK) {
    log::get().error("[{}] frontend '{}' could not pass an upstream answer through", ctx_.request_id,
                     frontend_.name);
    out = {};
  }
  bool sent = co_await send_output(out);
  co_return sent;
}

void FrontendWriter::queue_error(std::string_view type, std::string_view code, std::string_view message) {
  if (stream_failed_) return;
  plugin::FrontendOutput& out = event_out_;
  out.reset();
  // A stream under way has no status left to give: 502, the gateway's word for a broken upstream.
  if (encode_error(502, type, code, message, {}, true, out) != FERRY_OK)
    log::get().error("[{}] frontend '{}' could not encode a stream error", ctx_.request_id, frontend_.name);
  stream_failed_ = true;
  queue_output(out);
}

void FrontendWriter::end_events() {
  start_stream({});
  http_.end_stream();
}

// Not a coroutine: the writer's own awaitable is handed on, so a flush per
// batch of events costs no frame of its own.
asio::awaitable<bool> FrontendWriter::flush() {
  if (stream_wanted_) start_stream({});
  return http_.flush();
}

}  // namespace ferry::host
