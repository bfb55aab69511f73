#include "tests/adapters/frontend_harness.h"

#include <gtest/gtest.h>

#include "core/plugin/plugin_library.h"
#include "core/sse/sse_parser.h"

namespace ferry::adapter_test {

namespace {
ferry_view fv(std::string_view s) { return ferry_view{s.data(), s.size()}; }

Json parsed(std::string_view text) {
  Json j = Json::parse(text, nullptr, false);
  return j;
}
}  // namespace

std::unique_ptr<Frontend> Frontend::load(std::string_view plugin) {
  std::string path = std::string(FERRY_TEST_PLUGIN_DIR) + "/ferry_frontend_" + std::string(plugin) + ".so";
  std::string err;
  auto lib = plugin::PluginLibrary::load(path, &err);
  if (!lib || lib->kind() != FERRY_KIND_FRONTEND) {
    ADD_FAILURE() << "cannot load " << path << ": " << err;
    return nullptr;
  }
  const ferry_frontend_vtable* vt = lib->info().frontend;
  config::PluginBlock block;
  block.name = block.plugin = std::string(plugin);
  block.title = "[frontends." + block.name + "]";
  std::vector<config::Diagnostic> errors;
  json::Doc options = json::Doc::from_value(json::Value::object());
  auto self = plugin::instance_handle(lib->name(), block.name, FERRY_KIND_FRONTEND);
  ferry_instance* instance = nullptr;
  ferry_status st;
  {
    plugin::ConfigErrorScope scope(plugin::handle(&options), block, errors, self.get());
    st = vt->create(plugin::handle(&options), &instance);
  }
  if (st != FERRY_OK || !errors.empty()) {
    ADD_FAILURE() << "frontend " << plugin << " refused an empty configuration";
    return nullptr;
  }
  std::unique_ptr<Frontend> f(new Frontend);
  f->instance_ = std::make_unique<pipeline::Instance<ferry_frontend_vtable>>(std::move(lib), *vt, instance,
                                                                             std::move(self));
  const ferry_route* routes = nullptr;
  size_t n = 0;
  f->instance_->vt().routes(instance, &routes, &n);
  f->routes_.assign(routes, routes + n);
  return f;
}

std::unique_ptr<pipeline::RequestContext> Frontend::context(std::string_view model, bool stream) {
  auto ctx = std::make_unique<pipeline::RequestContext>(io_.get_executor(), "req-frontend-test");
  ctx->model = std::string(model);
  ctx->stream = stream;
  return ctx;
}

Frontend::Decoded Frontend::decode(std::string_view method, std::string_view path, std::string_view body,
                                   const util::Headers& headers) {
  Decoded d;
  // The host's rule (route_table.cpp): a route that needs a header first.
  size_t route = routes_.size();
  for (int pass = 0; pass < 2 && route == routes_.size(); ++pass)
    for (size_t i = 0; i < routes_.size(); ++i) {
      const auto& r = routes_[i];
      bool needs = r.header != nullptr;
      if ((pass == 0) != needs || r.method != method || !pipeline::RouteTable::path_matches(r.path, path))
        continue;
      if (needs && !headers.get(r.header)) continue;
      route = i;
      break;
    }
  if (route == routes_.size()) {
    ADD_FAILURE() << "no route for " << method << " " << path;
    d.status = FERRY_ERR_NOT_FOUND;
    return d;
  }
  auto ctx = context("", false);
  ctx->client_headers = headers;
  ctx->request = json::Doc::from_text(std::string(body));
  ferry_inbound in{
      sizeof(ferry_inbound), route, fv(method), fv(path), {}, plugin::handle(&ctx->client_headers), fv(body)};
  const auto& vt = instance_->vt();
  d.status = vt.decode(instance_->instance(), plugin::handle(ctx.get()), &in, plugin::handle(&ctx->request),
                       plugin::handle(&d.output));
  d.error_status = d.output.error_status;
  d.error_type = d.output.error_type;
  d.error_message = d.output.error_message;
  if (ctx->request.value()) d.canonical = parsed(ctx->request.text());
  return d;
}

std::vector<SseOut> Frontend::parse_events(std::string_view bytes) {
  std::vector<SseOut> out;
  sse::Parser parser;
  parser.feed(bytes, [&](sse::Event& e) { out.push_back({e.event, e.data}); });
  return out;
}

Frontend::Encoded Frontend::encode_stream(const std::vector<std::string>& chunks, bool end,
                                          std::string_view model) {
  Encoded e;
  auto ctx = context(model, true);
  const auto& vt = instance_->vt();
  ferry_encoder* enc = nullptr;
  if (vt.encoder_open) vt.encoder_open(instance_->instance(), plugin::handle(ctx.get()), &enc);
  std::string bytes;
  for (const auto& c : chunks) {
    plugin::FrontendOutput out;
    json::Doc doc = json::Doc::from_text(c);
    ferry_status st = vt.encode_chunk(instance_->instance(), enc, plugin::handle(ctx.get()),
                                      plugin::handle(&doc), plugin::handle(&out));
    if (st != FERRY_OK) e.status = st;
    bytes += out.events;
  }
  if (end) {
    plugin::FrontendOutput out;
    ferry_status st =
        vt.encode_end(instance_->instance(), enc, plugin::handle(ctx.get()), plugin::handle(&out));
    if (st != FERRY_OK) e.status = st;
    bytes += out.events;
  }
  if (vt.encoder_close) vt.encoder_close(instance_->instance(), enc);
  e.events = parse_events(bytes);
  return e;
}

Frontend::Encoded Frontend::encode_response(std::string_view canonical, std::string_view operation) {
  Encoded e;
  auto ctx = context("m", false);
  if (operation == "models") ctx->operation = pipeline::RequestContext::Operation::kModels;
  const auto& vt = instance_->vt();
  ferry_encoder* enc = nullptr;
  if (vt.encoder_open) vt.encoder_open(instance_->instance(), plugin::handle(ctx.get()), &enc);
  json::Doc doc = json::Doc::from_text(std::string(canonical));
  e.status = vt.encode_response(instance_->instance(), enc, plugin::handle(ctx.get()), plugin::handle(&doc),
                                plugin::handle(&e.whole));
  if (vt.encoder_close) vt.encoder_close(instance_->instance(), enc);
  return e;
}

Frontend::Encoded Frontend::encode_error(int status, std::string_view type, std::string_view message,
                                         bool in_stream) {
  Encoded e;
  auto ctx = context("m", in_stream);
  const auto& vt = instance_->vt();
  ferry_encoder* enc = nullptr;
  if (vt.encoder_open) vt.encoder_open(instance_->instance(), plugin::handle(ctx.get()), &enc);
  ferry_error_info info{sizeof info, status, fv(type), {}, fv(message), fv("3"), in_stream ? 1 : 0};
  e.status =
      vt.encode_error(instance_->instance(), enc, plugin::handle(ctx.get()), &info, plugin::handle(&e.whole));
  e.events = parse_events(e.whole.events);
  if (vt.encoder_close) vt.encoder_close(instance_->instance(), enc);
  return e;
}

}  // namespace ferry::adapter_test
