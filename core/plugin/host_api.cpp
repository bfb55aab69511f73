#include "core/plugin/host_api.h"

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include "core/http/url.h"
#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/plugin/plugin_library.h"
#include "core/util/secrets.h"

namespace ferry::plugin {
namespace {

using json::Value;

std::string_view sv(ferry_view v) { return v.ptr ? std::string_view(v.ptr, v.len) : std::string_view(); }
ferry_view fv(std::string_view s) { return ferry_view{s.data(), s.size()}; }

thread_local ConfigErrorScope* g_scope = nullptr;

// ---------------------------------------------------------------- diagnostics

void host_log(ferry_plugin_handle* self, const ferry_ctx* c, ferry_log_level level, ferry_view message) {
  static constexpr spdlog::level::level_enum kLevels[] = {spdlog::level::trace, spdlog::level::debug,
                                                          spdlog::level::info, spdlog::level::warn,
                                                          spdlog::level::err};
  auto lvl = level >= 0 && level <= 4 ? kLevels[level] : spdlog::level::err;
  auto& logger = log::get();
  if (!logger.should_log(lvl)) return;
  std::string_view name = self ? std::string_view(self->log_name) : std::string_view("plugin");
  // A plugin may log what an upstream said: credentials in it are masked.
  std::string text = secrets::scrub(sv(message));
  if (c)
    logger.log(lvl, "{}: [{}] {}", name, ctx(c)->request_id, text);
  else
    logger.log(lvl, "{}: {}", name, text);
}

uint64_t host_clock_ns(ferry_clock clock) {
  auto since = clock == FERRY_CLOCK_REALTIME ? std::chrono::system_clock::now().time_since_epoch()
                                             : std::chrono::steady_clock::now().time_since_epoch();
  return static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::nanoseconds>(since).count());
}

// `name` with the instance's label, when the instance has a name of its own:
// two instances of one plugin count apart.
std::string instance_series(const ferry_plugin_handle* self, std::string_view name) {
  std::string out(name);
  if (!self || self->instance.empty()) return out;
  std::string label = "instance=\"" + self->instance + "\"";
  auto brace = out.find('{');
  if (brace == std::string::npos)
    out += "{" + label + "}";
  else
    out.insert(brace + 1, label + (out.compare(brace + 1, 1, "}") == 0 ? "" : ","));
  return out;
}

void host_metric(ferry_plugin_handle* self, ferry_metric_kind kind, ferry_view name, double value) {
  auto& m = metrics::Registry::global();
  std::string series = instance_series(self, sv(name));
  switch (kind) {
    case FERRY_METRIC_COUNTER: m.add(series, value); break;
    case FERRY_METRIC_GAUGE: m.set(series, value); break;
    case FERRY_METRIC_HISTOGRAM: m.observe(series, value); break;
    default: break;
  }
}

// ---------------------------------------------------------------- config

ferry_status host_secret_get(ferry_view name, ferry_view* out) {
  // Values are copied once and kept, so the view outlives later setenv calls.
  static std::mutex mu;
  static std::map<std::string, std::string, std::less<>> cache;
  std::lock_guard lock(mu);
  auto it = cache.find(sv(name));
  if (it == cache.end()) {
    const char* v = std::getenv(std::string(sv(name)).c_str());
    if (!v) return FERRY_ERR_NOT_FOUND;
    it = cache.emplace(std::string(sv(name)), v).first;
    secrets::remember(it->second);  // never to be echoed back by an upstream
  }
  *out = fv(it->second);
  return FERRY_OK;
}

std::string dotted(std::string_view pointer) {
  std::string out;
  for (char c : pointer) out.push_back(c == '/' ? '.' : c);
  if (!out.empty() && out.front() == '.') out.erase(0, 1);
  return out;
}

void host_config_error(const ferry_json* config, ferry_view pointer, ferry_view message) {
  ConfigErrorScope* s = g_scope;
  if (!s || s->config != config) {
    log::get().warn("config_error outside plugin creation: {}: {}", sv(pointer), sv(message));
    return;
  }
  std::string key = dotted(sv(pointer));
  std::string text = key.empty() ? s->block.title + ": " + std::string(sv(message))
                                 : key + " in " + s->block.title + ": " + std::string(sv(message));
  s->errors.push_back({config::position_of(s->block, sv(pointer)), std::move(text)});
}

// ---------------------------------------------------------------- JSON

const Value* lookup(const ferry_json* j, ferry_view pointer, ferry_status* st) {
  Value* root = doc(j)->value();
  if (!root) {
    *st = FERRY_ERR_PARSE;
    return nullptr;
  }
  const Value* v = json::find(*root, sv(pointer));
  *st = v ? FERRY_OK : FERRY_ERR_NOT_FOUND;
  return v;
}

ferry_json_type host_json_type(const ferry_json* j, ferry_view pointer) {
  ferry_status st;
  const Value* v = j ? lookup(j, pointer, &st) : nullptr;
  if (!v) return FERRY_JSON_MISSING;
  switch (v->type()) {
    case Value::value_t::null: return FERRY_JSON_NULL;
    case Value::value_t::boolean: return FERRY_JSON_BOOL;
    case Value::value_t::string: return FERRY_JSON_STRING;
    case Value::value_t::array: return FERRY_JSON_ARRAY;
    case Value::value_t::object: return FERRY_JSON_OBJECT;
    case Value::value_t::number_integer:
    case Value::value_t::number_unsigned:
    case Value::value_t::number_float: return FERRY_JSON_NUMBER;
    default: return FERRY_JSON_MISSING;
  }
}

ferry_status host_json_get(const ferry_json* j, ferry_view pointer, ferry_view* out) {
  if (!j || !out) return FERRY_ERR_INVALID_ARGUMENT;
  ferry_status st;
  const Value* v = lookup(j, pointer, &st);
  if (!v) return st;
  *out = fv(doc(j)->keep(v->dump(-1, ' ', false, Value::error_handler_t::replace)));
  return FERRY_OK;
}

ferry_status host_json_get_string(const ferry_json* j, ferry_view pointer, ferry_view* out) {
  if (!j || !out) return FERRY_ERR_INVALID_ARGUMENT;
  ferry_status st;
  const Value* v = lookup(j, pointer, &st);
  if (!v) return st;
  if (!v->is_string()) return FERRY_ERR_TYPE_MISMATCH;
  *out = fv(v->get_ref<const std::string&>());
  return FERRY_OK;
}

ferry_status host_json_get_number(const ferry_json* j, ferry_view pointer, double* out) {
  if (!j || !out) return FERRY_ERR_INVALID_ARGUMENT;
  ferry_status st;
  const Value* v = lookup(j, pointer, &st);
  if (!v) return st;
  if (!v->is_number()) return FERRY_ERR_TYPE_MISMATCH;
  *out = v->get<double>();
  return FERRY_OK;
}

ferry_status host_json_get_bool(const ferry_json* j, ferry_view pointer, int32_t* out) {
  if (!j || !out) return FERRY_ERR_INVALID_ARGUMENT;
  ferry_status st;
  const Value* v = lookup(j, pointer, &st);
  if (!v) return st;
  if (!v->is_boolean()) return FERRY_ERR_TYPE_MISMATCH;
  *out = v->get<bool>() ? 1 : 0;
  return FERRY_OK;
}

ferry_status host_json_size(const ferry_json* j, ferry_view pointer, size_t* out) {
  if (!j || !out) return FERRY_ERR_INVALID_ARGUMENT;
  ferry_status st;
  const Value* v = lookup(j, pointer, &st);
  if (!v) return st;
  if (!v->is_array() && !v->is_object()) return FERRY_ERR_TYPE_MISMATCH;
  *out = v->size();
  return FERRY_OK;
}

ferry_status host_json_key_at(const ferry_json* j, ferry_view pointer, size_t index, ferry_view* out) {
  if (!j || !out) return FERRY_ERR_INVALID_ARGUMENT;
  ferry_status st;
  const Value* v = lookup(j, pointer, &st);
  if (!v) return st;
  if (!v->is_object()) return FERRY_ERR_TYPE_MISMATCH;
  if (index >= v->size()) return FERRY_ERR_NOT_FOUND;
  auto it = v->items().begin();
  std::advance(it, static_cast<std::ptrdiff_t>(index));
  *out = fv(it.key());
  return FERRY_OK;
}

ferry_status host_json_set(ferry_json* j, ferry_view pointer, ferry_view json_text) {
  if (!j) return FERRY_ERR_INVALID_ARGUMENT;
  if (doc(j)->frozen()) return FERRY_ERR_BAD_STATE;
  Value* root = doc(j)->value();
  if (!root) return FERRY_ERR_PARSE;
  Value parsed;
  if (!json::parse(sv(json_text), parsed, nullptr)) return FERRY_ERR_PARSE;
  Value* slot = json::find_or_create(*root, sv(pointer));
  if (!slot) return FERRY_ERR_INVALID_ARGUMENT;
  *slot = std::move(parsed);
  doc(j)->changed();
  return FERRY_OK;
}

ferry_status host_json_remove(ferry_json* j, ferry_view pointer) {
  if (!j) return FERRY_ERR_INVALID_ARGUMENT;
  if (doc(j)->frozen()) return FERRY_ERR_BAD_STATE;
  Value* root = doc(j)->value();
  if (!root) return FERRY_ERR_PARSE;
  if (!json::remove(*root, sv(pointer))) return FERRY_ERR_NOT_FOUND;
  doc(j)->changed();
  return FERRY_OK;
}

ferry_status host_json_serialize(const ferry_json* j, ferry_view* out) {
  if (!j || !out) return FERRY_ERR_INVALID_ARGUMENT;
  *out = fv(doc(j)->text());
  return FERRY_OK;
}

ferry_status host_json_new(ferry_ctx* c, ferry_view text, ferry_json** out) {
  if (!c || !out) return FERRY_ERR_INVALID_ARGUMENT;
  Value v;
  if (!json::parse(sv(text), v, nullptr)) return FERRY_ERR_PARSE;
  *out = handle(ctx(c)->new_doc(json::Doc::from_value(std::move(v))));
  return FERRY_OK;
}

ferry_status host_json_parse(ferry_view text, ferry_json** out) {
  if (!out) return FERRY_ERR_INVALID_ARGUMENT;
  Value v;
  if (!json::parse(sv(text), v, nullptr)) return FERRY_ERR_PARSE;
  *out = handle(new json::Doc(json::Doc::from_value(std::move(v))));
  return FERRY_OK;
}

void host_json_free(ferry_json* d) { delete doc(d); }

ferry_status host_json_copy(ferry_ctx* c, const ferry_json* src, ferry_json** out) {
  if (!c || !src || !out) return FERRY_ERR_INVALID_ARGUMENT;
  Value* v = doc(src)->value();
  if (!v) return FERRY_ERR_PARSE;
  *out = handle(ctx(c)->new_doc(json::Doc::from_value(*v)));
  return FERRY_OK;
}

// ---------------------------------------------------------------- request

ferry_status host_ctx_get(const ferry_ctx* c, ferry_ctx_field field, ferry_view* out) {
  if (!c || !out) return FERRY_ERR_INVALID_ARGUMENT;
  auto* r = ctx(c);
  switch (field) {
    case FERRY_CTX_REQUEST_ID: *out = fv(r->request_id); return FERRY_OK;
    case FERRY_CTX_PIPELINE: *out = fv(r->pipeline); return FERRY_OK;
    case FERRY_CTX_MODEL: *out = fv(r->model); return FERRY_OK;
    case FERRY_CTX_PROVIDER: *out = fv(r->provider); return FERRY_OK;
    case FERRY_CTX_CLIENT_ADDR: *out = fv(r->client_addr); return FERRY_OK;
    case FERRY_CTX_STREAM: *out = fv(r->stream ? "1" : "0"); return FERRY_OK;
    case FERRY_CTX_OPERATION: *out = fv(r->operation_name()); return FERRY_OK;
    case FERRY_CTX_FRONTEND: *out = fv(r->frontend); return FERRY_OK;
    case FERRY_CTX_DIALECT: *out = fv(r->dialect); return FERRY_OK;
    default: return FERRY_ERR_NOT_FOUND;
  }
}

ferry_status host_ctx_header(const ferry_ctx* c, ferry_view name, ferry_view* out) {
  if (!c || !out) return FERRY_ERR_INVALID_ARGUMENT;
  const std::string* v = ctx(c)->client_headers.get(sv(name));
  if (!v) return FERRY_ERR_NOT_FOUND;
  *out = fv(*v);
  return FERRY_OK;
}

bool valid_header(std::string_view name, std::string_view value) {
  if (name.empty()) return false;
  for (char ch : name)
    if (ch <= ' ' || ch == ':' || static_cast<unsigned char>(ch) >= 127) return false;
  for (char ch : value)
    if (ch == '\r' || ch == '\n' || ch == '\0') return false;
  return true;
}

ferry_status host_ctx_set_upstream_header(ferry_ctx* c, ferry_view name, ferry_view value) {
  if (!c || !valid_header(sv(name), sv(value))) return FERRY_ERR_INVALID_ARGUMENT;
  ctx(c)->upstream_headers.set(sv(name), sv(value));
  return FERRY_OK;
}

ferry_status host_ctx_set_response_header(ferry_ctx* c, ferry_view name, ferry_view value) {
  if (!c || !valid_header(sv(name), sv(value))) return FERRY_ERR_INVALID_ARGUMENT;
  if (ctx(c)->response_started) return FERRY_ERR_BAD_STATE;
  ctx(c)->response_headers.set(sv(name), sv(value));
  return FERRY_OK;
}

ferry_status host_ctx_respond(ferry_ctx* c, int32_t status, ferry_view body) {
  if (!c || status < 100 || status > 599) return FERRY_ERR_INVALID_ARGUMENT;
  auto* r = ctx(c);
  if (r->response_started) return FERRY_ERR_BAD_STATE;
  r->respond_status = status;
  r->respond_body.assign(sv(body));
  return FERRY_OK;
}

ferry_status host_resume(ferry_ctx* c, ferry_status result) {
  if (!c) return FERRY_ERR_INVALID_ARGUMENT;
  return ctx(c)->async->resume(result);
}

ferry_status host_schedule(ferry_ctx* c, uint64_t delay_ns, ferry_task_fn fn, ferry_task* task) {
  if (!c) return FERRY_ERR_INVALID_ARGUMENT;
  return ctx(c)->async->schedule(delay_ns, fn, task);
}

// ---------------------------------------------------------------- shared state (1.2)

std::atomic<state::Store*> g_store{nullptr};

ferry_status host_state_call(ferry_plugin_handle* self, ferry_ctx* c, const ferry_state_request* req,
                             ferry_state_fn fn, ferry_task* task) {
  if (!self || !req || !fn || req->struct_size < offsetof(ferry_state_request, ttl_ms) + sizeof(uint64_t))
    return FERRY_ERR_INVALID_ARGUMENT;
  if (req->op < FERRY_STATE_GET || req->op > FERRY_STATE_SCAN) return FERRY_ERR_INVALID_ARGUMENT;
  state::Store* store = g_store.load(std::memory_order_acquire);
  if (!store) return FERRY_ERR_UNSUPPORTED;
  state::Op op;
  op.op = req->op;
  op.flags = req->flags;
  // Plugins (and since 1.3 their instances) cannot read or clobber each other's keys.
  op.key.reserve(self->state_prefix.size() + req->key.len);
  op.key.append(self->state_prefix).append(sv(req->key));
  op.strip = self->state_prefix.size();
  op.value.assign(sv(req->value));
  op.amount = req->amount;
  op.limit = req->limit;
  op.rate = req->rate;
  op.ttl_ms = req->ttl_ms;
  auto deliver = [fn, task](state::Result& r, bool cancelled) {
    ferry_state_result out{sizeof out, r.status,         r.applied ? 1 : 0, cancelled ? 1 : 0,
                           r.value,    r.retry_after_ms, fv(r.data)};
    fn(task, &out);
  };
  state::Result now;
  if (store->try_now(op, now)) {
    deliver(now, false);
    return FERRY_OK;
  }
  if (!c) {
    store->submit(std::move(op), [deliver](state::Result&& r) { deliver(r, false); });
    return FERRY_OK;
  }
  // Back on the request's worker thread, where the ctx may be used.
  std::shared_ptr<pipeline::AsyncState> async = ctx(c)->async;
  store->submit(std::move(op), [deliver, async](state::Result&& r) {
    async->post([deliver, r = std::move(r)](bool ended) mutable { deliver(r, ended); });
  });
  return FERRY_OK;
}

ferry_status host_ctx_set_tag(ferry_ctx* c, ferry_view name, ferry_view value) {
  if (!c || name.len == 0) return FERRY_ERR_INVALID_ARGUMENT;
  auto& tags = ctx(c)->tags;
  for (auto& [k, v] : tags)
    if (k == sv(name)) {
      v.assign(sv(value));
      return FERRY_OK;
    }
  tags.emplace_back(std::string(sv(name)), std::string(sv(value)));
  return FERRY_OK;
}

ferry_status host_ctx_get_tag(const ferry_ctx* c, ferry_view name, ferry_view* out) {
  if (!c || !out) return FERRY_ERR_INVALID_ARGUMENT;
  const std::string* v = ctx(c)->tag(sv(name));
  if (!v) return FERRY_ERR_NOT_FOUND;
  *out = fv(*v);
  return FERRY_OK;
}

ferry_status host_ctx_call(ferry_ctx* c, ferry_view operation, ferry_view body, ferry_call_fn fn,
                           ferry_task* task) {
  if (!c || !fn) return FERRY_ERR_INVALID_ARGUMENT;
  auto* r = ctx(c);
  using Op = pipeline::RequestContext::Operation;
  Op op;
  if (sv(operation) == "embeddings")
    op = Op::kEmbeddings;
  else if (sv(operation) == "chat.completions")
    op = Op::kChat;
  else
    return FERRY_ERR_INVALID_ARGUMENT;
  if (!r->call || r->internal) return FERRY_ERR_UNSUPPORTED;  // no calls from within a call
  std::shared_ptr<pipeline::AsyncState> async = r->async;
  r->call(r->call_owner, *r, op, std::string(sv(body)), [fn, task, async](int status, std::string answer) {
    fn(task, status, fv(answer), async->ended() ? 1 : 0);
  });
  return FERRY_OK;
}

ferry_status host_admin_reply(ferry_admin_reply* r, int32_t status, ferry_view body) {
  if (!r) return FERRY_ERR_INVALID_ARGUMENT;
  std::unique_ptr<AdminReplyHandle> h(reinterpret_cast<AdminReplyHandle*>(r));
  if (status < 100 || status > 599) status = 500;
  h->sink->reply(status, std::string(sv(body)));
  return FERRY_OK;
}

// ---------------------------------------------------------------- upstream

UpstreamBuild* up(ferry_upstream* u) { return reinterpret_cast<UpstreamBuild*>(u); }

ferry_status host_upstream_set_method(ferry_upstream* u, ferry_view method) {
  if (!u || method.len == 0) return FERRY_ERR_INVALID_ARGUMENT;
  up(u)->request.method.assign(sv(method));
  return FERRY_OK;
}

ferry_status host_upstream_set_url(ferry_upstream* u, ferry_view url) {
  if (!u || !http::parse_url(sv(url))) return FERRY_ERR_INVALID_ARGUMENT;
  up(u)->request.url.assign(sv(url));
  return FERRY_OK;
}

ferry_status host_upstream_set_header(ferry_upstream* u, ferry_view name, ferry_view value,
                                      int32_t sensitive) {
  if (!u || !valid_header(sv(name), sv(value))) return FERRY_ERR_INVALID_ARGUMENT;
  up(u)->request.headers.set(sv(name), sv(value), sensitive != 0);
  return FERRY_OK;
}

ferry_status host_upstream_set_body(ferry_upstream* u, ferry_view body) {
  if (!u) return FERRY_ERR_INVALID_ARGUMENT;
  up(u)->request.body.assign(sv(body));
  up(u)->body_doc = nullptr;
  return FERRY_OK;
}

ferry_status host_upstream_set_body_json(ferry_upstream* u, const ferry_json* d) {
  if (!u || !d) return FERRY_ERR_INVALID_ARGUMENT;
  up(u)->body_doc = doc(d);
  return FERRY_OK;
}

ferry_status host_upstream_set_streaming(ferry_upstream* u, int32_t streaming) {
  if (!u) return FERRY_ERR_INVALID_ARGUMENT;
  up(u)->request.streaming = streaming != 0;
  return FERRY_OK;
}

ferry_status host_headers_get(const ferry_headers* h, ferry_view name, ferry_view* out) {
  if (!h || !out) return FERRY_ERR_INVALID_ARGUMENT;
  const std::string* v = reinterpret_cast<const util::Headers*>(h)->get(sv(name));
  if (!v) return FERRY_ERR_NOT_FOUND;
  *out = fv(*v);
  return FERRY_OK;
}

// ---------------------------------------------------------------- sinks

pipeline::Sink* sink(ferry_sink* s) { return reinterpret_cast<pipeline::Sink*>(s); }
using Kind = pipeline::SinkEvent::Kind;

ferry_status sink_json(ferry_sink* s, Kind kind, ferry_view json) {
  if (!s) return FERRY_ERR_INVALID_ARGUMENT;
  pipeline::SinkEvent ev{kind, {}, 0, {}, {}, false, 0, {}, 0};
  // The pass-through case (an OpenAI-compatible upstream) hands back its
  // input: keep that document, with its parse if it has one, instead of a copy.
  if (sink(s)->is_source(sv(json)))
    ev.from_source = true;
  else
    ev.doc = json::Doc::from_text(std::string(sv(json)));
  return sink(s)->push(std::move(ev));
}

ferry_status host_sink_response(ferry_sink* s, ferry_view json) {
  return sink_json(s, Kind::kResponse, json);
}
ferry_status host_sink_chunk(ferry_sink* s, ferry_view json) { return sink_json(s, Kind::kChunk, json); }
ferry_status host_sink_done(ferry_sink* s) {
  if (!s) return FERRY_ERR_INVALID_ARGUMENT;
  return sink(s)->push({Kind::kDone, {}, 0, {}, {}, false, 0, {}, 0});
}
ferry_status host_sink_error(ferry_sink* s, int32_t status, ferry_view type, ferry_view message) {
  if (!s) return FERRY_ERR_INVALID_ARGUMENT;
  if (status < 400 || status > 599) status = 502;
  return sink(s)->push(
      {Kind::kError, {}, status, std::string(sv(type)), std::string(sv(message)), false, 0, {}, 0});
}

// A provider's error (1.3) as the sink event the engine reads.
std::optional<pipeline::SinkEvent> upstream_error_event(const ferry_upstream_error* e) {
  if (!e || e->struct_size < offsetof(ferry_upstream_error, retry_after_ms) + sizeof(uint64_t))
    return std::nullopt;
  pipeline::SinkEvent ev{
      Kind::kError, {}, e->http_status, std::string(sv(e->type)), std::string(sv(e->message)), false, 0,
      {},           0};
  if (ev.status < 400 || ev.status > 599) ev.status = 502;
  ev.error_class = e->error_class >= FERRY_ERROR_CLASS_DEFAULT && e->error_class <= FERRY_ERROR_CLASS_AUTH
                       ? e->error_class
                       : FERRY_ERROR_CLASS_DEFAULT;
  ev.code.assign(sv(e->code));
  ev.retry_after_ms = e->retry_after_ms;
  return ev;
}

ferry_status host_sink_fail(ferry_sink* s, const ferry_upstream_error* e) {
  auto ev = upstream_error_event(e);
  if (!s || !ev) return FERRY_ERR_INVALID_ARGUMENT;
  return sink(s)->push(std::move(*ev));
}

ferry_status host_upstream_refuse(ferry_upstream* up, const ferry_upstream_error* e) {
  auto ev = upstream_error_event(e);
  if (!up || !ev) return FERRY_ERR_INVALID_ARGUMENT;
  // The client's own request: a client error unless the adapter says otherwise.
  if (ev->error_class == FERRY_ERROR_CLASS_DEFAULT) ev->error_class = FERRY_ERROR_CLASS_CLIENT;
  reinterpret_cast<UpstreamBuild*>(up)->refused = std::move(*ev);
  return FERRY_OK;
}

ferry_status host_upstream_set_framing(ferry_upstream* up, ferry_framing framing) {
  if (!up || framing < FERRY_FRAMING_SSE || framing > FERRY_FRAMING_RAW) return FERRY_ERR_INVALID_ARGUMENT;
  reinterpret_cast<UpstreamBuild*>(up)->framing = framing;
  return FERRY_OK;
}

// ---------------------------------------------------------------- frontend output (1.3)

FrontendOutput* output(ferry_output* o) { return reinterpret_cast<FrontendOutput*>(o); }

ferry_status host_output_header(ferry_output* o, ferry_view name, ferry_view value) {
  if (!o || !valid_header(sv(name), sv(value))) return FERRY_ERR_INVALID_ARGUMENT;
  output(o)->headers.set(sv(name), sv(value));
  return FERRY_OK;
}

ferry_status host_output_body(ferry_output* o, int32_t status, ferry_view content_type, ferry_view body) {
  if (!o || status < 200 || status > 599 || !valid_header("content-type", sv(content_type)))
    return FERRY_ERR_INVALID_ARGUMENT;
  auto* out = output(o);
  if (out->has_body || !out->events.empty()) return FERRY_ERR_BAD_STATE;
  out->has_body = true;
  out->status = status;
  out->content_type.assign(sv(content_type));
  out->body.assign(sv(body));
  return FERRY_OK;
}

ferry_status host_output_event(ferry_output* o, ferry_view event, ferry_view data) {
  if (!o) return FERRY_ERR_INVALID_ARGUMENT;
  std::string_view name = sv(event), text = sv(data);
  if (name.find_first_of("\r\n") != std::string_view::npos) return FERRY_ERR_INVALID_ARGUMENT;
  auto* out = output(o);
  if (out->has_body) return FERRY_ERR_BAD_STATE;
  if (!name.empty()) out->events.append("event: ").append(name).append("\n");
  // The common case, one line (compact JSON): two vectorised scans, one append.
  if (!std::memchr(text.data(), '\n', text.size()) && !std::memchr(text.data(), '\r', text.size())) {
    out->events.append("data: ").append(text).append("\n\n");
    return FERRY_OK;
  }
  // A line break inside the data would end the field: each line is a data line of its own.
  for (;;) {
    size_t nl = text.find_first_of("\r\n");
    out->events.append("data: ").append(text.substr(0, nl)).append("\n");
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + (text.compare(nl, 2, "\r\n") == 0 ? 2 : 1));
  }
  out->events.append("\n");
  return FERRY_OK;
}

ferry_status host_output_error(ferry_output* o, int32_t status, ferry_view type, ferry_view message) {
  if (!o || status < 400 || status > 599) return FERRY_ERR_INVALID_ARGUMENT;
  auto* out = output(o);
  out->error_status = status;
  out->error_type.assign(sv(type));
  out->error_message.assign(sv(message));
  return FERRY_OK;
}

ferry_status host_ctx_native_body(const ferry_ctx* c, ferry_view* out) {
  if (!c || !out) return FERRY_ERR_INVALID_ARGUMENT;
  const auto* r = ctx(c);
  // A middleware's edit (a redaction, a default) must reach the upstream: the
  // client's own bytes only go when nothing was changed.
  if (!r->native_body_valid || r->dialect.empty()) return FERRY_ERR_NOT_FOUND;
  *out = fv(r->client_body);
  return FERRY_OK;
}

ferry_status host_upstream_set_dialect(ferry_upstream* up, ferry_view dialect) {
  if (!up) return FERRY_ERR_INVALID_ARGUMENT;
  reinterpret_cast<UpstreamBuild*>(up)->dialect.assign(sv(dialect));
  return FERRY_OK;
}

ferry_status host_ctx_set_deadline(ferry_ctx* c, uint64_t ms) {
  if (!c || ms == 0) return FERRY_ERR_INVALID_ARGUMENT;
  auto* r = ctx(c);
  r->middleware_deadline_ms = r->middleware_deadline_ms ? std::min(r->middleware_deadline_ms, ms) : ms;
  return FERRY_OK;
}

ferry_status host_ctx_skip(ferry_ctx* c, ferry_view reason, uint64_t retry_after_ms) {
  if (!c) return FERRY_ERR_INVALID_ARGUMENT;
  auto& skip = ctx(c)->skip;
  skip.set = true;
  skip.reason.assign(sv(reason));
  skip.retry_after_ms = retry_after_ms;
  return FERRY_OK;
}

ferry_plugin_handle* host_instance_self(const ferry_json* config) {
  for (ConfigErrorScope* scope = g_scope; scope; scope = scope->previous())
    if (scope->config == config) return scope->instance;
  return nullptr;
}

const ferry_host_api kHostApi = [] {
  ferry_host_api a{};
  a.struct_size = sizeof a;
  a.abi_major = FERRY_ABI_MAJOR;
  a.abi_minor = FERRY_ABI_MINOR;
  a.log = host_log;
  a.clock_ns = host_clock_ns;
  a.metric = host_metric;
  a.secret_get = host_secret_get;
  a.config_error = host_config_error;
  a.json_type = host_json_type;
  a.json_get = host_json_get;
  a.json_get_string = host_json_get_string;
  a.json_get_number = host_json_get_number;
  a.json_get_bool = host_json_get_bool;
  a.json_size = host_json_size;
  a.json_key_at = host_json_key_at;
  a.json_set = host_json_set;
  a.json_remove = host_json_remove;
  a.json_serialize = host_json_serialize;
  a.json_new = host_json_new;
  a.json_copy = host_json_copy;
  a.ctx_get = host_ctx_get;
  a.ctx_header = host_ctx_header;
  a.ctx_set_upstream_header = host_ctx_set_upstream_header;
  a.ctx_set_response_header = host_ctx_set_response_header;
  a.ctx_respond = host_ctx_respond;
  a.resume = host_resume;
  a.schedule = host_schedule;
  a.upstream_set_method = host_upstream_set_method;
  a.upstream_set_url = host_upstream_set_url;
  a.upstream_set_header = host_upstream_set_header;
  a.upstream_set_body = host_upstream_set_body;
  a.upstream_set_body_json = host_upstream_set_body_json;
  a.upstream_set_streaming = host_upstream_set_streaming;
  a.headers_get = host_headers_get;
  a.sink_response = host_sink_response;
  a.sink_chunk = host_sink_chunk;
  a.sink_done = host_sink_done;
  a.sink_error = host_sink_error;
  a.state_call = host_state_call;
  a.ctx_set_tag = host_ctx_set_tag;
  a.ctx_get_tag = host_ctx_get_tag;
  a.admin_reply = host_admin_reply;
  a.json_parse = host_json_parse;
  a.json_free = host_json_free;
  a.ctx_call = host_ctx_call;
  a.output_header = host_output_header;
  a.output_body = host_output_body;
  a.output_event = host_output_event;
  a.output_error = host_output_error;
  a.instance_self = host_instance_self;
  a.ctx_native_body = host_ctx_native_body;
  a.upstream_set_dialect = host_upstream_set_dialect;
  a.ctx_set_deadline = host_ctx_set_deadline;
  a.ctx_skip = host_ctx_skip;
  a.upstream_refuse = host_upstream_refuse;
  a.upstream_set_framing = host_upstream_set_framing;
  a.sink_fail = host_sink_fail;
  return a;
}();

}  // namespace

const ferry_host_api* host_api() { return &kHostApi; }

void set_state_store(state::Store* store) { g_store.store(store, std::memory_order_release); }
state::Store* state_store() { return g_store.load(std::memory_order_acquire); }

ConfigErrorScope::ConfigErrorScope(const ferry_json* c, const config::PluginBlock& b,
                                   std::vector<config::Diagnostic>& e, ferry_plugin_handle* instance)
    : config(c), block(b), errors(e), instance(instance), previous_(g_scope) {
  g_scope = this;
}

ConfigErrorScope::~ConfigErrorScope() { g_scope = previous_; }

}  // namespace ferry::plugin
