#include "adapter_harness.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>

#include "core/json/doc.h"
#include "core/pipeline/request_context.h"
#include "core/plugin/host_api.h"
#include "core/plugin/plugin_library.h"
#include "core/sse/sse_parser.h"

namespace ferry::adapter_test {

namespace {

using Kind = pipeline::SinkEvent::Kind;

ferry_view fv(std::string_view s) { return ferry_view{s.data(), s.size()}; }

Json parse_or_discarded(std::string_view text) { return Json::parse(text, nullptr, false); }

// Loads the plugin and creates an instance from `block`, exactly as
// core/pipeline/runtime.cpp create_instance() does.
Created create(const std::string& path, const config::PluginBlock& block) {
  Created out;
  std::string err;
  auto lib = plugin::PluginLibrary::load(path, &err);
  if (!lib) {
    out.status = FERRY_ERR_NOT_FOUND;
    out.errors.push_back({block.pos, block.title + ": " + err});
    return out;
  }
  if (lib->kind() != FERRY_KIND_PROVIDER || !lib->info().provider) {
    out.status = FERRY_ERR_INVALID_ARGUMENT;
    out.errors.push_back({block.pos, block.title + ": " + path + " is not a provider plugin"});
    return out;
  }
  const ferry_provider_vtable* vt = lib->info().provider;
  json::Doc options = json::Doc::from_value(block.options);
  ferry_instance* instance = nullptr;
  auto self = plugin::instance_handle(lib->name(), block.name, FERRY_KIND_PROVIDER);
  {
    plugin::ConfigErrorScope scope(plugin::handle(&options), block, out.errors, self.get());
    out.status = vt->create(plugin::handle(&options), &instance);
  }
  if (out.status != FERRY_OK || !out.errors.empty()) {
    if (instance) vt->destroy(instance);
    return out;
  }
  auto inst = std::make_unique<pipeline::Instance<ferry_provider_vtable>>(std::move(lib), *vt, instance,
                                                                          std::move(self));
  out.adapter = std::make_unique<Adapter>(block.name, std::move(inst));
  return out;
}

std::string plugin_path(std::string_view plugin) {
  if (plugin.find('/') != std::string_view::npos) return std::string(plugin);
  return std::string(FERRY_TEST_PLUGIN_DIR) + "/" + plugin::file_name(FERRY_KIND_PROVIDER, plugin);
}

}  // namespace

// ------------------------------------------------------------ golden files

std::filesystem::path golden_path(std::string_view relative) {
  return std::filesystem::path(FERRY_GOLDEN_DIR) / relative;
}

std::string read_golden(std::string_view relative) {
  auto path = golden_path(relative);
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ADD_FAILURE() << "golden file missing: " << path;
    return {};
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Json golden(std::string_view relative) {
  std::string text = read_golden(relative);
  Json j = parse_or_discarded(text);
  if (j.is_discarded()) ADD_FAILURE() << "golden file is not JSON: " << golden_path(relative);
  return j;
}

::testing::AssertionResult matches_golden(const Json& actual, std::string_view relative) {
  const char* update = std::getenv("FERRY_UPDATE_GOLDEN");
  if (update && std::string_view(update) == "1") {
    std::ofstream out(golden_path(relative), std::ios::binary | std::ios::trunc);
    out << actual.dump(2) << "\n";
    if (!out) return ::testing::AssertionFailure() << "could not write " << golden_path(relative);
    return ::testing::AssertionSuccess();
  }
  Json expected = golden(relative);
  if (actual == expected) return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure()
         << "differs from golden file " << golden_path(relative).string()
         << "\npatch from golden to actual: " << Json::diff(expected, actual).dump() << "\nexpected:\n"
         << expected.dump(2) << "\nactual:\n"
         << actual.dump(2);
}

// ------------------------------------------------------------ sink events

std::string text(const pipeline::SinkEvent& e) {
  // Doc::text() may serialize lazily, hence not const; the harness only reads.
  return std::string(const_cast<json::Doc&>(e.doc).text());
}

Json event_json(const pipeline::SinkEvent& e) {
  auto document = [&](const char* key) {
    Json j = parse_or_discarded(text(e));
    if (j.is_discarded()) return Json{{std::string(key) + "_text", text(e)}};
    return Json{{key, std::move(j)}};
  };
  switch (e.kind) {
    case Kind::kResponse: return document("response");
    case Kind::kChunk: return document("chunk");
    case Kind::kDone: return Json{{"done", true}};
    case Kind::kError:
      return Json{{"error", {{"status", e.status}, {"type", e.type}, {"message", e.message}}}};
    case Kind::kNative: return Json{{"native", {{"event", e.type}, {"data", e.message}}}};
  }
  return Json{{"unknown", static_cast<int>(e.kind)}};
}

Json events_json(const std::vector<pipeline::SinkEvent>& events) {
  Json out = Json::array();
  for (const auto& e : events) out.push_back(event_json(e));
  return out;
}

Json without_volatile(Json value) {
  if (value.is_array()) {
    for (auto& v : value) v = without_volatile(std::move(v));
    return value;
  }
  if (!value.is_object()) return value;
  for (const char* key : {"response", "chunk"})
    if (auto it = value.find(key); it != value.end() && it->is_object()) it->erase("created");
  if (value.contains("object") && value["object"].is_string() &&
      value["object"].get<std::string>().starts_with("chat.completion"))
    value.erase("created");
  return value;
}

std::vector<const pipeline::SinkEvent*> Result::of(pipeline::SinkEvent::Kind kind) const {
  std::vector<const pipeline::SinkEvent*> out;
  for (const auto& e : events)
    if (e.kind == kind) out.push_back(&e);
  return out;
}

// ------------------------------------------------------------ upstream

Json Upstream::body_json() const { return parse_or_discarded(body); }

std::string Upstream::header(std::string_view name) const {
  const std::string* v = headers.get(name);
  return v ? *v : std::string();
}

bool Upstream::has_header(std::string_view name) const { return headers.get(name) != nullptr; }

bool Upstream::sensitive(std::string_view name) const {
  for (const auto& h : headers)
    if (util::iequals(h.name, name)) return h.sensitive;
  return false;
}

Json Upstream::to_json() const {
  Json h = Json::object();
  Json secret = Json::array();
  for (const auto& e : headers) {
    h[e.name] = e.value;
    if (e.sensitive) secret.push_back(e.name);
  }
  return Json{{"method", method},        {"url", url},
              {"headers", std::move(h)}, {"sensitive_headers", std::move(secret)},
              {"streaming", streaming},  {"body", body_json()}};
}

std::vector<Sse> parse_sse(std::string_view text) {
  std::vector<Sse> out;
  sse::Parser parser;
  auto on_event = [&](const sse::Event& e) { out.push_back({e.event, e.data, e.id}); };
  bool ok = parser.feed(text, on_event);
  // A last event without its blank line still counts.
  ok = ok && parser.feed("\n\n", on_event);
  if (!ok) ADD_FAILURE() << "SSE text has an oversized event";
  return out;
}

// ------------------------------------------------------------ adapter

Adapter::Adapter(std::string block_name, std::unique_ptr<pipeline::Instance<ferry_provider_vtable>> instance)
    : block_name_(std::move(block_name)), instance_(std::move(instance)) {}

Adapter::~Adapter() {
  instance_.reset();
  settle();
}

void Adapter::settle() {
  io_.restart();
  io_.poll();
}

std::unique_ptr<pipeline::RequestContext> Adapter::new_context(const std::string& request_json) {
  auto ctx = std::make_unique<pipeline::RequestContext>(io_.get_executor(),
                                                        "req-adapter-test-" + std::to_string(++requests_));
  ctx->client_addr = "127.0.0.1:50000";
  ctx->pipeline = "adapter-test";
  ctx->provider = block_name_;
  ctx->request = json::Doc::from_text(request_json);
  // What the engine derives from the request before it calls a provider.
  if (json::Value* v = ctx->request.value(); v && v->is_object()) {
    if (auto m = v->find("model"); m != v->end() && m->is_string()) ctx->model = m->get<std::string>();
    if (auto s = v->find("stream"); s != v->end() && s->is_boolean()) ctx->stream = s->get<bool>();
  }
  return ctx;
}

Upstream Adapter::build_request(const std::string& request_json) {
  Upstream out;
  auto ctx = new_context(request_json);
  if (!vt().build_request) {
    out.status = FERRY_ERR_UNSUPPORTED;
    return out;
  }
  plugin::UpstreamBuild build;
  out.status = vt().build_request(instance(), plugin::handle(ctx.get()), plugin::handle(&ctx->request),
                                  plugin::handle(&build));
  ctx->request.clear_scratch();
  if (build.body_doc) build.request.body.assign(build.body_doc->text());
  out.method = build.request.method;
  out.url = build.request.url;
  out.headers = build.request.headers;
  out.body = build.request.body;
  out.streaming = build.request.streaming;
  out.request_after = parse_or_discarded(ctx->request.text());
  ctx.reset();
  settle();
  return out;
}

Result Adapter::parse_response(int status, std::string_view body, const util::Headers& headers) {
  Result out;
  auto ctx = new_context("{}");
  if (!vt().parse_response) {
    out.status = FERRY_ERR_UNSUPPORTED;
    return out;
  }
  pipeline::Sink* sink = ctx->new_sink();
  json::Doc body_doc = json::Doc::from_text(std::string(body));
  std::string_view text = body_doc.text();
  ferry_http_response resp{sizeof(ferry_http_response), status, fv(text), plugin::handle(&headers),
                           plugin::handle(&body_doc)};
  // As the engine does: a pass-through answer keeps the body's document.
  sink->set_source(&body_doc);
  out.status = vt().parse_response(instance(), plugin::handle(ctx.get()), &resp, plugin::handle(sink));
  sink->adopt_source();
  for (auto& e : sink->drain()) out.events.push_back(std::move(e));
  ctx.reset();
  settle();
  return out;
}

Result Adapter::stream(const std::vector<Sse>& events) {
  Result out;
  auto ctx = new_context("{}");
  ctx->stream = true;
  if (!vt().stream_open || !vt().parse_event) {
    out.status = FERRY_ERR_UNSUPPORTED;
    return out;
  }
  ferry_stream* state = nullptr;
  out.status = vt().stream_open(instance(), plugin::handle(ctx.get()), &state);
  if (out.status != FERRY_OK) return out;
  pipeline::Sink* sink = ctx->new_sink();
  for (const auto& e : events) {
    if (out.status != FERRY_OK || sink->terminated()) break;
    json::Doc data = json::Doc::from_text(e.data);
    ferry_sse_event ev{sizeof(ferry_sse_event), fv(e.event), fv(data.text()), fv(e.id),
                       plugin::handle(&data)};
    sink->set_source(&data);
    out.status = vt().parse_event(instance(), state, plugin::handle(ctx.get()), &ev, plugin::handle(sink));
    sink->adopt_source();
    for (auto& se : sink->drain()) out.events.push_back(std::move(se));
  }
  if (vt().stream_close) vt().stream_close(instance(), state);
  ctx.reset();
  settle();
  return out;
}

Result Adapter::serve(const std::string& request_json, std::chrono::milliseconds timeout) {
  Result out;
  auto ctx = new_context(request_json);
  if (!vt().serve) {
    out.status = FERRY_ERR_UNSUPPORTED;
    return out;
  }
  pipeline::Sink* sink = ctx->new_sink();
  out.status =
      vt().serve(instance(), plugin::handle(ctx.get()), plugin::handle(&ctx->request), plugin::handle(sink));
  ctx->request.clear_scratch();
  out.synchronous = sink->terminated();
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!sink->terminated() && std::chrono::steady_clock::now() < deadline) {
    if (io_.stopped()) io_.restart();
    io_.run_one_for(std::chrono::milliseconds(10));
  }
  for (auto& e : sink->drain()) out.events.push_back(std::move(e));
  ctx.reset();  // ends the request: whatever is still scheduled runs cancelled
  settle();
  return out;
}

// ------------------------------------------------------------ creation

std::string Created::messages() const {
  std::string out;
  for (const auto& d : errors) out += d.str() + "\n";
  return out;
}

Created create_adapter(std::string_view plugin, const Json& options) {
  config::PluginBlock block;
  block.name = std::string(plugin);
  block.plugin = std::string(plugin);
  block.title = "[providers." + block.name + "]";
  block.pos = config::SourcePos{"adapter-test.toml", 1, 1};
  block.options = json::Value::parse(options.dump());
  return create(plugin_path(plugin), block);
}

Created create_adapter_from_toml(std::string_view toml, std::string_view provider, const std::string& file) {
  std::string text(toml);
  text += "\n[pipelines.adapter_test]\nmodels = [\"adapter-test-model\"]\nproviders = [\"";
  text += provider;
  text += "\"]\n";
  auto loaded = config::load_string(text, file);
  Created out;
  if (!loaded.config) {
    out.status = FERRY_ERR_CONFIG;
    out.errors = std::move(loaded.errors);
    ADD_FAILURE() << "the host refused the TOML before the plugin saw it:\n" << out.messages();
    return out;
  }
  const config::ProviderConfig* p = loaded.config->provider(provider);
  if (!p) {
    out.status = FERRY_ERR_NOT_FOUND;
    ADD_FAILURE() << "no [providers." << provider << "] in the TOML";
    return out;
  }
  // loaded.config (and the TOML document the block points into) lives until
  // create() has placed every diagnostic.
  return create(plugin_path(p->block.plugin), p->block);
}

}  // namespace ferry::adapter_test
