#include "host/ferryd/route_handler.h"

#include "core/json/parse.h"
#include "core/log/log.h"
#include "core/pipeline/request_checks.h"
#include "core/plugin/host_api.h"
#include "host/ferryd/status_views.h"

namespace ferry::host {

boost::asio::awaitable<pipeline::Outcome> RouteHandler::serve(pipeline::Engine& engine, RouteRequest& req,
                                                              const pipeline::Frontend& frontend,
                                                              size_t route, pipeline::RequestContext& ctx,
                                                              FrontendWriter& writer) const {
  using json::Value;
  pipeline::Outcome o;
  const ferry_route& r = frontend.routes[route];
  std::string_view path = req.path;
  std::string_view target = req.target;
  std::string_view query = target.size() > path.size() ? target.substr(path.size() + 1) : std::string_view();
  std::string body = std::move(req.body);
  // A body is parsed once, within [limits], before the frontend reads it.
  bool has_body = !body.empty() || req.post;
  ctx.request = has_body ? json::Doc::from_text(body, &limits_) : json::Doc::from_text("{}");
  if (has_body && !ctx.request.value()) {
    auto refusal = pipeline::refuse_unparsable(ctx.request.parse_error());
    o.status = refusal.status;
    o.error = refusal.message;
    bool sent =
        co_await writer.send_error(refusal.status, "invalid_request_error", refusal.code, refusal.message);
    if (!sent) o.status = 499;
    co_return o;
  }
  auto fv = [](std::string_view s) { return ferry_view{s.data(), s.size()}; };
  std::string_view method = req.method;
  ferry_inbound inbound{sizeof(ferry_inbound),
                        route,
                        fv(method),
                        fv(path),
                        fv(query),
                        plugin::handle(&ctx.client_headers),
                        fv(body)};
  plugin::FrontendOutput decoded;
  const auto& vt = frontend.plugin->vt();
  ferry_status st = vt.decode(frontend.plugin->instance(), plugin::handle(&ctx), &inbound,
                              plugin::handle(&ctx.request), plugin::handle(&decoded));
  ctx.request.clear_scratch();
  // What a provider of the client's own dialect may send upstream as it came
  // (ABI 1.3 ctx_native_body), and the point middleware edits count from.
  ctx.dialect = frontend.plugin->library().name();
  ctx.decoded_generation = ctx.request.generation();
  ctx.client_body = std::move(body);
  if (decoded.error_status) {
    o.status = decoded.error_status;
    o.error = decoded.error_message;
    bool sent =
        co_await writer.send_error(decoded.error_status, decoded.error_type, "", decoded.error_message);
    if (!sent) o.status = 499;
    co_return o;
  }
  if (st == FERRY_RESPOND) {
    o.status = decoded.has_body ? decoded.status : 200;
    bool sent = co_await writer.send_output(decoded);
    if (!sent) o.status = 499;
    co_return o;
  }
  if (st != FERRY_OK || !ctx.request.value()) {
    o.status = 500;
    o.error =
        "frontend '" + frontend.name + "' could not decode the request (status " + std::to_string(st) + ")";
    log::get().error("[{}] {}", ctx.request_id, o.error);
    bool sent = co_await writer.send_error(500, "server_error", "plugin_error", o.error);
    if (!sent) o.status = 499;
    co_return o;
  }
  if (r.operation == FERRY_OP_MODELS) {
    ctx.operation = pipeline::RequestContext::Operation::kModels;
    o.status = 200;
    std::string models = models_json(runtime_, frontend, started_unix_);
    bool sent = co_await writer.send_json(200, models, {});
    if (!sent) o.status = 499;
    co_return o;
  }
  if (r.operation != FERRY_OP_CHAT && r.operation != FERRY_OP_EMBEDDINGS) {
    o.status = 500;
    o.error = "frontend '" + frontend.name + "' neither answered nor named an operation for " +
              std::string(method) + " " + std::string(path);
    log::get().error("[{}] {}", ctx.request_id, o.error);
    bool sent = co_await writer.send_error(500, "server_error", "plugin_error", o.error);
    if (!sent) o.status = 499;
    co_return o;
  }
  // A door that exposes some models only ([frontends.NAME] models).
  if (const Value* m = pipeline::member(*ctx.request.value(), "model");
      m && m->is_string() && !frontend.exposes(m->get_ref<const std::string&>())) {
    o.status = 404;
    o.error = "The model '" + json::printable(m->get_ref<const std::string&>(), 200) +
              "' does not exist or is not served through this frontend";
    bool sent = co_await writer.send_error(404, "invalid_request_error", "model_not_found", o.error);
    if (!sent) o.status = 499;
    co_return o;
  }
  if (r.operation == FERRY_OP_EMBEDDINGS)
    o = co_await engine.embeddings(ctx, writer);
  else
    o = co_await engine.chat_completions(ctx, writer);
  co_return o;
}

}  // namespace ferry::host
