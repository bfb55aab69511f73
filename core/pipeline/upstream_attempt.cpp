#include "core/pipeline/upstream_attempt.h"

#include "core/pipeline/request_checks.h"
#include "core/plugin/host_api.h"
#include "core/sse/line_parser.h"
#include "core/sse/sse_parser.h"

namespace ferry::pipeline {

namespace asio = boost::asio;
using json::Doc;
using json::Value;

namespace {

ferry_view fv(std::string_view s) { return ferry_view{s.data(), s.size()}; }

// What an upstream's SSE error event says, for the failure it becomes.
std::string error_event_message(Doc& data) {
  const Value* v = data.value();
  std::string message = "upstream sent an error event";
  if (v && v->is_object()) {
    const Value* err = member(*v, "error");
    const Value* m = err && err->is_object() ? member(*err, "message") : member(*v, "message");
    if (m && m->is_string()) message += ": " + m->get<std::string>();
  } else if (!data.text().empty()) {
    message += ": " + json::printable(data.text(), 200);
  }
  return message;
}

}  // namespace

// Not a coroutine: the attempt's own coroutine is what the caller awaits,
// one frame less on a path every request takes.
asio::awaitable<AttemptReport> UpstreamAttempt::run(const Provider& p, ModelState& model) {
  prepare_upstream_request(p);
  model_ = &model;
  started_ = std::chrono::steady_clock::now();
  first_byte_seen_ = false;
  deadline_cut_ = false;
  broke_stream_ = false;
  stream_.drop_held();
  if (p.serves()) return serve_attempt(p);
  return http_attempt(p);
}

AttemptReport UpstreamAttempt::report(Result result) const {
  AttemptReport r;
  r.result = result;
  if (result == Result::kFailed) r.failure = &failure_;
  r.deadline_cut = deadline_cut_;
  r.broke_stream = broke_stream_;
  return r;
}

void UpstreamAttempt::prepare_upstream_request(const Provider& p) {
  // The provider's own name for the model, if it maps it; set on every attempt
  // because the previous one may have been another provider's.
  Value* req = ctx_.request.value();
  auto mapped = p.model_map.find(requested_model_);
  const std::string& want = mapped == p.model_map.end() ? requested_model_ : mapped->second;
  if (auto m = req->find("model");
      m == req->end() || !m->is_string() || m->get_ref<const std::string&>() != want) {
    (*req)["model"] = want;
    ctx_.request.changed();
  }
  // For accounting the host wants usage at the end of every stream; the chunk
  // carrying it is withheld from clients that did not ask for it.
  if (!ctx_.stream || stream_.include_usage()) return;
  Value* so = const_cast<Value*>(member(*req, "stream_options"));
  bool has = so && bool_member(*so, "include_usage");
  if (p.stream_usage && !has) {
    if (!so || !so->is_object()) (*req)["stream_options"] = Value::object();
    (*req)["stream_options"]["include_usage"] = true;
    ctx_.request.changed();
  } else if (!p.stream_usage && has) {
    (*req)["stream_options"].erase("include_usage");
    if ((*req)["stream_options"].empty()) req->erase("stream_options");
    ctx_.request.changed();
  }
}

http::UpstreamOptions UpstreamAttempt::limits(const Provider& p) {
  http::UpstreamOptions o = p.upstream;
  if (deadline_ == std::chrono::steady_clock::time_point::max() || stream_.committed()) return o;
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline_ - std::chrono::steady_clock::now());
  left = std::max(left, std::chrono::milliseconds(1));
  if (left < o.read) {
    o.read = left;
    deadline_cut_ = true;
  }
  o.connect = std::min(o.connect, left);
  return o;
}

// The provider's time to first byte feeds least-latency routing.
void UpstreamAttempt::first_byte(const Provider& p) {
  if (first_byte_seen_) return;
  first_byte_seen_ = true;
  auto us =
      std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() - started_);
  p.stats.record_ttfb(static_cast<uint64_t>(us.count()));
  if (model_) ewma(model_->ttfb_ewma_us, static_cast<uint64_t>(us.count()));
}

asio::awaitable<AttemptReport::Result> UpstreamAttempt::fail(Failure f) {
  // What a cancelled attempt failed with is the cancellation, not the upstream.
  if (ctx_.cancelled() && !ctx_.cancel_reason().empty()) f.message = ctx_.cancel_reason();
  stream_.drop_held();  // chunks of a provider that failed before anything was sent
  if (stream_.committed()) {
    broke_stream_ = true;
    co_await stream_.abort(f.message);
    co_return Result::kFinished;
  }
  failure_ = std::move(f);
  co_return Result::kFailed;
}

asio::awaitable<AttemptReport::Result> UpstreamAttempt::on_event(SinkEvent& ev, const Provider& p,
                                                                 bool& done) {
  using K = SinkEvent::Kind;
  done = true;
  switch (ev.kind) {
    case K::kError: {
      Failure f = Failure::from_provider_error(p.name, ev);
      Result r = co_await fail(std::move(f));
      co_return r;
    }
    case K::kResponse: {
      if (ctx_.stream) {
        // The provider answered in one piece: replay it as a stream.
        Doc& whole = ev.doc;
        if (!whole.value() || !whole.value()->is_object()) break;
        for (auto& chunk : response_to_chunks(*whole.value(), true)) {
          Doc doc = Doc::from_text(std::move(chunk));
          bool delivered = co_await forwarder_.deliver_chunk(std::move(doc));
          if (!delivered) co_return undelivered();
        }
        co_await stream_.finish();
        co_return Result::kSuccess;
      }
      Doc& response = ev.doc;
      if (!response.value() || !response.value()->is_object()) break;
      co_await forwarder_.deliver_response(response);
      co_return Result::kSuccess;
    }
    case K::kChunk: {
      if (!ctx_.stream) break;
      done = false;
      bool delivered = co_await forwarder_.deliver_chunk(std::move(ev.doc));
      if (!delivered) {
        done = true;
        co_return undelivered();
      }
      if (forwarder_.over_bound()) {
        done = true;
        co_await forwarder_.end_at_bound(p);
      }
      co_return Result::kSuccess;
    }
    case K::kDone: {
      if (!ctx_.stream) break;
      co_await stream_.finish();
      co_return Result::kSuccess;
    }
    case K::kNative: {
      done = false;
      if (stream_.client_gone()) {
        done = true;
        co_return Result::kFinished;
      }
      stream_.send_native_event(ev.type, ev.message);
      co_return Result::kSuccess;
    }
  }
  // An answer of the wrong shape for this request: the provider is broken.
  std::string_view why = ev.kind == K::kChunk  ? "streamed an answer to a non-streaming request"
                         : ev.kind == K::kDone ? "ended without an answer"
                                               : "returned a response that is not a JSON object";
  Failure f = Failure::bad_upstream(p.name, why);
  Result r = co_await fail(std::move(f));
  co_return r;
}

asio::awaitable<AttemptReport> UpstreamAttempt::serve_attempt(const Provider& p) {
  Sink* sink = ctx_.new_sink();
  const auto& vt = p.plugin->vt();
  ferry_status st = vt.serve(p.plugin->instance(), plugin::handle(&ctx_), plugin::handle(&ctx_.request),
                             plugin::handle(sink));
  ctx_.request.clear_scratch();
  if (st != FERRY_OK && st != FERRY_PAUSE && !sink->has_events()) {
    if (st == FERRY_ERR_UNSUPPORTED)
      co_return report(failed(Failure::unsupported(p.name, ctx_.operation_name())));
    co_return report(
        failed(Failure::provider_error(p.name, "failed to serve (status " + std::to_string(st) + ")")));
  }
  for (;;) {
    bool woke = co_await sink->wait(limits(p).read);
    if (!woke) {
      sink->abandon();
      // A named Failure, not a braced temporary: g++ 12 frees temporaries in
      // co_await arguments too early (README, "Working on Ferry").
      Failure f = Failure::upstream_timeout(
          p.name, "produced nothing for " + std::to_string(p.upstream.read.count()) + " ms");
      Result r = co_await fail(std::move(f));
      co_return report(r);
    }
    sink->drain_into(batch_);
    first_byte(p);
    for (auto& ev : batch_) {
      bool done = false;
      Result r = co_await on_event(ev, p, done);
      if (done || r != Result::kSuccess) {
        sink->abandon();
        co_return report(r);
      }
    }
    if (stream_.committed()) {
      bool sent = co_await stream_.flush();
      if (!sent) {
        sink->abandon();
        co_return report(Result::kFinished);
      }
    }
  }
}

asio::awaitable<AttemptReport> UpstreamAttempt::http_attempt(const Provider& p) {
  const auto& vt = p.plugin->vt();
  plugin::UpstreamBuild build;
  ferry_status st = vt.build_request(p.plugin->instance(), plugin::handle(&ctx_),
                                     plugin::handle(&ctx_.request), plugin::handle(&build));
  ctx_.request.clear_scratch();
  // The client's own request cannot go to this provider (upstream_refuse):
  // its error, classed as the adapter says, never the provider's.
  if (build.refused) co_return report(failed(Failure::from_provider_error(p.name, *build.refused)));
  // Not this adapter's kind of request (embeddings from a chat-only API).
  if (st == FERRY_ERR_UNSUPPORTED)
    co_return report(failed(Failure::unsupported(p.name, ctx_.operation_name())));
  if (st != FERRY_OK || build.request.url.empty())
    co_return report(failed(Failure::provider_error(
        p.name, "could not build the upstream request (status " + std::to_string(st) + ")")));
  for (const auto& h : ctx_.upstream_headers) build.request.headers.set(h.name, h.value);
  if (!build.request.headers.get("accept-encoding")) build.request.headers.set("accept-encoding", "identity");
  if (build.body_doc) build.request.body.assign(build.body_doc->text());
  // The upstream got the client's own body in the client's dialect: its
  // answer goes back as it came (the adapter's translation is still read, for
  // usage and bounds).
  bool native = native_allowed_ && !build.dialect.empty() && build.dialect == ctx_.dialect;

  http::UpstreamOptions options = limits(p);
  auto sent = co_await client_.send(build.request, options, ctx_.upstream_cancel_slot());
  if (sent.error) co_return report(failed(Failure::from_upstream(sent.error, p.name)));
  auto& ex = *sent.exchange;
  first_byte(p);
  // Nothing but identity was asked for: a compressed answer cannot be read
  // (nor passed on as JSON), so it is a broken upstream, not a client error.
  if (const std::string* encoding = ex.headers().get("content-encoding");
      encoding && !encoding->empty() && !util::iequals(*encoding, "identity")) {
    co_return report(failed(
        Failure::bad_upstream(p.name, "answered with Content-Encoding: " + json::printable(*encoding, 40) +
                                          ", which ferryd did not ask for")));
  }
  const std::string* content_type = ex.headers().get("content-type");
  // A streamed answer, framed as the adapter said: SSE (by its content type),
  // newline-delimited JSON, or raw bytes for the adapter to cut itself.
  bool sse = false;
  if (ctx_.stream && ex.status() == 200) {
    switch (build.framing) {
      case FERRY_FRAMING_NDJSON: sse = vt.parse_event != nullptr; break;
      case FERRY_FRAMING_RAW: sse = vt.parse_bytes != nullptr; break;
      default: sse = vt.parse_event && content_type && content_type->starts_with("text/event-stream"); break;
    }
  }
  Sink* sink = ctx_.new_sink();

  if (!sse) {
    std::string body;
    auto err = co_await ex.read_all(body, options_.max_upstream_body);
    if (err) co_return report(failed(Failure::from_upstream(err, p.name)));
    std::string native_body;
    if (native && ex.status() == 200) native_body = body;
    Doc body_doc = Doc::from_text(std::move(body));
    std::string_view text = body_doc.text();
    ferry_http_response resp{sizeof(ferry_http_response), ex.status(), fv(text),
                             plugin::handle(&ex.headers()), plugin::handle(&body_doc)};
    sink->set_source(&body_doc);
    st = vt.parse_response(p.plugin->instance(), plugin::handle(&ctx_), &resp, plugin::handle(sink));
    sink->adopt_source();
    sink->drain_into(batch_);
    if (batch_.empty()) {
      co_return report(failed(Failure::bad_upstream(
          p.name, ": its adapter could not read the upstream answer (HTTP " + std::to_string(ex.status()) +
                      ", status " + std::to_string(st) + ")")));
    }
    for (auto& ev : batch_) {
      bool done = false;
      Result r = Result::kSuccess;
      if (ev.kind == SinkEvent::Kind::kResponse && !native_body.empty() && ev.doc.is_object()) {
        co_await forwarder_.deliver_response(ev.doc, native_body);
        done = true;
      } else {
        r = co_await on_event(ev, p, done);
      }
      // The upstream's Retry-After, unless the adapter named its own (sink_fail).
      if (r == Result::kFailed && failure_.retry_after.empty()) {
        if (const std::string* ra = ex.headers().get("retry-after")) failure_.retry_after = *ra;
      }
      if (done || r != Result::kSuccess) co_return report(r);
    }
    // A non-streamed answer whose events did not finish it.
    co_return report(failed(Failure::bad_upstream(p.name, "gave an incomplete answer")));
  }

  // Server-Sent Events: forward each chunk as soon as it is parsed.
  ferry_stream* state = nullptr;
  if (vt.stream_open && vt.stream_open(p.plugin->instance(), plugin::handle(&ctx_), &state) != FERRY_OK)
    co_return report(failed(Failure::provider_error(p.name, "could not start reading the stream")));
  struct StreamCloser {
    const Provider& p;
    ferry_stream* state;
    ~StreamCloser() {
      if (p.plugin->vt().stream_close) p.plugin->vt().stream_close(p.plugin->instance(), state);
    }
  } closer{p, state};

  ferry_status adapter_status = FERRY_OK;
  // One upstream event (an SSE event, or an NDJSON line with no name) to the adapter.
  auto to_adapter = [&](std::string_view name, std::string text, std::string_view id) {
    if (adapter_status != FERRY_OK || sink->terminated()) return;
    Doc data = Doc::from_text(std::move(text));
    // data's own text is what the adapter sees, so a pass-through chunk is
    // recognised and kept without a copy (Sink::adopt_source).
    ferry_sse_event ev{sizeof(ferry_sse_event), fv(name), fv(data.text()), fv(id), plugin::handle(&data)};
    // The event itself, ahead of its translation, for a client of the
    // upstream's dialect. Not an error event: that one is the canonical
    // failure's to report, so that nothing committed can still fail over.
    if (native && name != "error")
      sink->push(
          {SinkEvent::Kind::kNative, {}, 0, std::string(name), std::string(data.text()), false, 0, {}, 0});
    size_t before = sink->pending();
    sink->set_source(&data);
    adapter_status =
        vt.parse_event(p.plugin->instance(), state, plugin::handle(&ctx_), &ev, plugin::handle(sink));
    sink->adopt_source();
    // An event named "error" is an error in every dialect: if the adapter
    // passed it on as a chunk, it ends the attempt here instead.
    if (name == "error") sink->error_unless_handled(before, error_event_message(data));
  };
  sse::Parser parser;
  sse::LineParser lines;
  std::string bytes;
  for (;;) {
    bytes.clear();
    bool eof = false;
    // The deadline covers the time to the first byte; a started stream gets
    // the provider's own read timeout between events.
    if (stream_.committed()) ex.set_read_timeout(p.upstream.read);
    auto err = co_await ex.read_some(bytes, &eof);
    if (err) {
      Failure f = Failure::from_upstream(err, p.name);
      Result r = co_await fail(std::move(f));
      co_return report(r);
    }
    bool ok = true;
    switch (build.framing) {
      case FERRY_FRAMING_NDJSON:
        ok = lines.feed(bytes, [&](std::string& line) { to_adapter({}, std::move(line), {}); });
        break;
      case FERRY_FRAMING_RAW:
        // Binary event streams: the adapter cuts them itself.
        if (!bytes.empty() && !sink->terminated())
          adapter_status = vt.parse_bytes(p.plugin->instance(), state, plugin::handle(&ctx_), fv(bytes),
                                          plugin::handle(sink));
        break;
      default:
        ok = parser.feed(bytes, [&](sse::Event& e) { to_adapter(e.event, std::move(e.data), e.id); });
        break;
    }
    // The body ended: a dialect whose streams end there (no closing event)
    // finishes it now; for the others it was cut short.
    if (eof && ok && adapter_status == FERRY_OK && vt.stream_end && !sink->terminated())
      adapter_status =
          vt.stream_end(p.plugin->instance(), state, plugin::handle(&ctx_), plugin::handle(sink));
    if (!ok || adapter_status != FERRY_OK) {
      Failure f = !ok ? Failure::bad_upstream(p.name, "sent an oversized stream event")
                      : Failure::bad_upstream(p.name, ": its adapter rejected a stream event (status " +
                                                          std::to_string(adapter_status) + ")");
      Result r = co_await fail(std::move(f));
      co_return report(r);
    }
    sink->drain_into(batch_);
    for (auto& ev : batch_) {
      bool done = false;
      Result r = co_await on_event(ev, p, done);
      if (r == Result::kSuccess && done && !eof && !forwarder_.cut_at_bound()) {
        // The stream's end usually has the body's last chunk right behind it:
        // read it so the connection goes back to the pool.
        co_await ex.discard_rest(std::chrono::milliseconds(100), 64 * 1024);
      }
      if (done || r != Result::kSuccess) co_return report(r);
    }
    if (stream_.committed()) {
      bool sent = co_await stream_.flush();
      if (!sent) co_return report(Result::kFinished);
    }
    if (eof) {
      Failure f = Failure::stream_interrupted(p.name, "closed the stream before it finished");
      Result r = co_await fail(std::move(f));
      co_return report(r);
    }
  }
}

}  // namespace ferry::pipeline
