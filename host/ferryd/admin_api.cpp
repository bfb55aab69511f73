#include "host/ferryd/admin_api.h"

#include <algorithm>
#include <chrono>
#include <memory>
#include <mutex>
#include <optional>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>

#include "core/json/doc.h"
#include "core/log/log.h"
#include "core/pipeline/engine.h"
#include "core/plugin/host_api.h"

namespace ferry::host {
namespace {

using Answer = std::pair<int, std::string>;

Answer error(int status, const std::string& message, const char* code) {
  return {status, pipeline::error_json(message, "invalid_request_error", code)};
}

// Compares in time independent of where the strings differ.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i)
    diff |= static_cast<unsigned char>(a[i] ^ b[i % std::max<size_t>(1, b.size())]);
  return diff == 0;
}

ferry_view fv(std::string_view v) { return ferry_view{v.data(), v.size()}; }

// A middleware's answer to an admin request (on_admin, ABI 1.2). It arrives
// from any thread; the admin coroutine waits for it on a timer that the
// answer cancels.
class PluginReply final : public plugin::AdminReplySink, public std::enable_shared_from_this<PluginReply> {
 public:
  explicit PluginReply(boost::asio::any_io_executor ex) : ex_(std::move(ex)), timer_(ex_) {}
  void reply(int status, std::string body) override;
  // The answer, or nothing when none came within `timeout` (a late one is dropped).
  boost::asio::awaitable<std::optional<std::pair<int, std::string>>> wait(std::chrono::milliseconds timeout);

 private:
  boost::asio::any_io_executor ex_;
  boost::asio::steady_timer timer_;
  std::mutex mu_;
  bool done_ = false;
  int status_ = 0;
  std::string body_;
};

void PluginReply::reply(int status, std::string body) {
  {
    std::lock_guard lock(mu_);
    if (done_) return;
    done_ = true;
    status_ = status;
    body_ = std::move(body);
  }
  boost::asio::post(ex_, [self = shared_from_this()] { self->timer_.cancel(); });
}

boost::asio::awaitable<std::optional<std::pair<int, std::string>>> PluginReply::wait(
    std::chrono::milliseconds timeout) {
  timer_.expires_after(timeout);
  {
    std::lock_guard lock(mu_);
    if (done_) co_return std::pair{status_, std::move(body_)};
  }
  co_await timer_.async_wait(boost::asio::as_tuple(boost::asio::use_awaitable));
  std::lock_guard lock(mu_);
  if (!done_) {
    done_ = true;  // a late reply is dropped
    co_return std::nullopt;
  }
  co_return std::pair{status_, std::move(body_)};
}

}  // namespace

bool AdminApi::authorized(std::string_view authorization) const {
  if (token_.empty()) return true;
  return authorization.starts_with("Bearer ") && same_secret(authorization.substr(7), token_);
}

boost::asio::awaitable<Answer> AdminApi::handle(const AdminRequest& req,
                                                boost::asio::any_io_executor executor) const {
  if (!authorized(req.authorization))
    co_return error(401, "the admin API needs Authorization: Bearer <token>", "unauthorized");
  if (req.target.starts_with("/admin/plugins/")) {
    Answer answer = co_await to_plugin(req, std::move(executor));
    co_return answer;
  }
  co_return route(req);
}

Answer AdminApi::route(const AdminRequest& req) const {
  std::string_view path = req.target.substr(0, req.target.find('?'));
  bool get = req.method == "GET";
  bool post = req.method == "POST";
  if (path == "/admin/providers" && get) return {200, admin_providers_json(runtime_)};
  if (path == "/admin/pipelines" && get) return {200, admin_pipelines_json(runtime_)};
  if (path == "/health" && get) return {200, health_json(runtime_, state_)};
  constexpr std::string_view kPrefix = "/admin/providers/";
  if (path.starts_with(kPrefix) && post) {
    std::string_view rest = path.substr(kPrefix.size());
    auto slash = rest.find('/');
    std::string_view verb = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);
    return drain_or_enable(rest.substr(0, slash), verb);
  }
  return error(404, "no admin route for " + std::string(req.method) + " " + std::string(path), "unknown_url");
}

Answer AdminApi::drain_or_enable(std::string_view name, std::string_view verb) const {
  const pipeline::Provider* p = nullptr;
  for (const auto& candidate : runtime_.providers())
    if (candidate->name == name) p = candidate.get();
  if (!p) return error(404, "no provider named '" + std::string(name) + "'", "provider_not_found");
  if (verb != "drain" && verb != "enable")
    return error(404, "use POST /admin/providers/NAME/drain or /enable", "unknown_url");
  bool drain = verb == "drain";
  bool was = p->health->set_drained(drain);
  if (was != drain)
    log::lifecycle().info("event=provider_{} provider={} (admin API)", drain ? "drained" : "enabled",
                          p->name);
  return {200, json::dump(json::Value{{"name", p->name}, {"drained", drain}})};
}

// METHOD /admin/plugins/NAME/REST goes to middleware NAME's on_admin (1.2).
boost::asio::awaitable<Answer> AdminApi::to_plugin(const AdminRequest& req,
                                                   boost::asio::any_io_executor executor) const {
  std::string_view target = req.target;
  std::string_view query;
  if (auto q = target.find('?'); q != std::string_view::npos) {
    query = target.substr(q + 1);
    target = target.substr(0, q);
  }
  target.remove_prefix(std::string_view("/admin/plugins/").size());
  std::string_view name = target.substr(0, target.find('/'));
  std::string_view rest = target.substr(name.size());
  const pipeline::Middleware* mw = nullptr;
  for (const auto& m : runtime_.middleware())
    if (m->name == name) mw = m.get();
  if (!mw || !mw->plugin->vt().on_admin) {
    std::string names;
    for (const auto& m : runtime_.middleware())
      if (m->plugin->vt().on_admin) names += (names.empty() ? "" : ", ") + m->name;
    co_return error(404,
                    "no middleware '" + std::string(name) +
                        "' with an admin API (these have one: " + (names.empty() ? "none" : names) + ")",
                    "unknown_url");
  }
  auto sink = std::make_shared<PluginReply>(std::move(executor));
  auto* h = new plugin::AdminReplyHandle{sink};
  std::string method(req.method);
  ferry_admin_request ar{sizeof ar, fv(method), fv(rest), fv(query), fv(req.body)};
  ferry_status st = mw->plugin->vt().on_admin(mw->plugin->instance(), &ar, plugin::handle(h));
  if (st != FERRY_OK) {
    // The plugin refused without replying, so the handle is still ours.
    delete h;
    co_return error(
        500, "middleware '" + mw->name + "' failed its admin request (status " + std::to_string(st) + ")",
        "plugin_error");
  }
  auto answer = co_await sink->wait(std::chrono::seconds(10));
  if (!answer)
    co_return error(504, "middleware '" + mw->name + "' did not answer within 10 s", "plugin_timeout");
  co_return std::move(*answer);
}

}  // namespace ferry::host
