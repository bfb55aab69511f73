#include "host/ferryd/access_log.h"

#include <cstdio>
#include <string>

#include "core/json/doc.h"
#include "core/json/parse.h"
#include "core/log/log.h"
#include "core/metrics/metrics.h"

namespace ferry::host {
namespace {

std::string fmt_ms(std::chrono::microseconds us) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3f", static_cast<double>(us.count()) / 1000.0);
  return buf;
}

}  // namespace

void AccessLog::served(const pipeline::RequestContext& ctx, std::string_view method, std::string_view path,
                       std::string_view frontend, const pipeline::Outcome& o,
                       std::chrono::microseconds latency) const {
  using json::Value;
  record_metrics(o, latency);
  if (!enabled_) return;
  // Plugins' request tags (auth's key, user, team ...), quoted as JSON strings.
  std::string tags;
  for (const auto& [name, value] : ctx.tags)
    tags += " tag." + json::printable(name, 64) + "=" + json::dump(Value(value));
  log::get().info(
      "access request_id={} method={} path={} frontend={} status={} model={} pipeline={} provider={} "
      "tried={} attempts={} retries={} stream={} latency_ms={} ttfb_ms={} tokens_in={} "
      "tokens_out={}{}{}{}{}",
      ctx.request_id, json::printable(method, 20), json::printable(path, 200), frontend, o.status,
      ctx.model.empty() ? "-" : json::dump(Value(ctx.model)), o.pipeline.empty() ? "-" : o.pipeline,
      o.provider.empty() ? "-" : o.provider, o.tried.empty() ? "-" : o.tried, o.attempts, o.retries, o.stream,
      fmt_ms(latency), fmt_ms(o.ttfb), o.prompt_tokens, o.completion_tokens,
      o.usage_estimated ? " usage=estimated" : "",
      o.error.empty() ? "" : " error=", o.error.empty() ? "" : json::dump(Value(o.error)), tags);
}

void AccessLog::refused(std::string_view id, std::string_view method, std::string_view path,
                        int status) const {
  if (!enabled_) return;
  log::get().info("access request_id={} method={} path={} status={}", id, json::printable(method, 20),
                  json::printable(path, 200), status);
}

void AccessLog::admin(std::string_view id, std::string_view method, std::string_view target,
                      int status) const {
  if (!enabled_) return;
  log::get().info("admin request_id={} method={} path={} status={}", id, json::printable(method, 20),
                  json::printable(target, 200), status);
}

void AccessLog::record_metrics(const pipeline::Outcome& o, std::chrono::microseconds latency) {
  auto& m = metrics::Registry::global();
  std::string labels = "{pipeline=\"" + (o.pipeline.empty() ? std::string("-") : o.pipeline) +
                       "\",status=\"" + std::to_string(o.status) + "\"}";
  m.add("ferry_requests_total" + labels, 1);
  m.observe("ferry_request_duration_seconds{pipeline=\"" + o.pipeline + "\"}", latency.count() / 1e6);
  if (o.prompt_tokens > 0)
    m.add("ferry_tokens_total{direction=\"in\"}", static_cast<double>(o.prompt_tokens));
  if (o.completion_tokens > 0)
    m.add("ferry_tokens_total{direction=\"out\"}", static_cast<double>(o.completion_tokens));
}

}  // namespace ferry::host
