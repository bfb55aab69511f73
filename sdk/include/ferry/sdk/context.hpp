// ferry/sdk/context.hpp - One client request as a hook sees it, and who is asking (requester()).
// Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in order.
#ifndef FERRY_SDK_CONTEXT_HPP
#define FERRY_SDK_CONTEXT_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

// One client request. Non-owning; valid until on_complete returns.
class Context {
 public:
  explicit Context(ferry_ctx* ctx) : ctx_(ctx) {}

  std::string_view get(ferry_ctx_field field) const {
    ferry_view out{};
    if (host().ctx_get(ctx_, field, &out) != FERRY_OK) return {};
    return sv(out);
  }
  std::string_view request_id() const { return get(FERRY_CTX_REQUEST_ID); }
  std::string_view pipeline() const { return get(FERRY_CTX_PIPELINE); }
  std::string_view model() const { return get(FERRY_CTX_MODEL); }
  std::string_view provider() const { return get(FERRY_CTX_PROVIDER); }
  bool streaming() const { return get(FERRY_CTX_STREAM) == "1"; }
  // "chat.completions" or "embeddings" (ABI 1.2), "models" to an encoder (1.3).
  std::string_view operation() const { return get(FERRY_CTX_OPERATION); }
  // The client's dialect: the frontend plugin it came through (1.3).
  std::string_view dialect() const { return get(FERRY_CTX_DIALECT); }
  // The client's body as it arrived, while no middleware changed the request
  // (1.3, sdk/ABI.md R21): a provider of the client's dialect sends it on.
  std::optional<std::string_view> native_body() const {
    ferry_view out{};
    if (host().ctx_native_body(ctx_, &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  bool embeddings() const { return operation() == "embeddings"; }

  std::optional<std::string_view> header(std::string_view name) const {
    ferry_view out{};
    if (host().ctx_header(ctx_, view(name), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  Status set_upstream_header(std::string_view name, std::string_view value) {
    return static_cast<Status>(host().ctx_set_upstream_header(ctx_, view(name), view(value)));
  }
  Status set_response_header(std::string_view name, std::string_view value) {
    return static_cast<Status>(host().ctx_set_response_header(ctx_, view(name), view(value)));
  }
  // Sets the answer and returns kRespond, so a hook can `return ctx.respond(...)`.
  Status respond(int status, std::string_view json_body) {
    auto s = host().ctx_respond(ctx_, status, view(json_body));
    return s == FERRY_OK ? Status::kRespond : static_cast<Status>(s);
  }
  // An OpenAI-shaped error answer.
  Status respond_error(int status, std::string_view type, std::string_view message,
                       std::string_view code = {}) {
    JsonWriter w;
    w.begin_object().key("error").begin_object();
    w.key("message").value(message).key("type").value(type).key("code");
    if (code.empty())
      w.null();
    else
      w.value(code);
    w.end_object().end_object();
    return respond(status, w.str());
  }
  Status resume(Status result) {
    return static_cast<Status>(host().resume(ctx_, static_cast<ferry_status>(result)));
  }
  // Runs fn(false) on this request's thread after delay_ns, or fn(true) if the
  // request ends first.
  Status schedule(uint64_t delay_ns, std::function<void(bool cancelled)> fn) {
    auto* task = new ferry_task{std::move(fn), nullptr, nullptr};
    task->self = detail::current_self();
    auto s = host().schedule(ctx_, delay_ns, &Context::run_task, task);
    if (s != FERRY_OK) delete task;
    return static_cast<Status>(s);
  }
  void log(LogLevel level, std::string_view message) const { sdk::log(level, message, ctx_); }

  // Request metadata shared with other plugins (ABI 1.2): auth sets "key",
  // "user" and "team"; rate-limit and budget read them.
  std::optional<std::string_view> tag(std::string_view name) const {
    ferry_view out{};
    if (host().ctx_get_tag(ctx_, view(name), &out) != FERRY_OK) return std::nullopt;
    return sv(out);
  }
  Status set_tag(std::string_view name, std::string_view value) {
    return static_cast<Status>(host().ctx_set_tag(ctx_, view(name), view(value)));
  }
  // on_request (1.3): the request must have its first byte within ms of its
  // arrival; only ever shortens its deadline.
  Status set_deadline(uint64_t ms) { return static_cast<Status>(host().ctx_set_deadline(ctx_, ms)); }
  // on_attempt (1.3): skip this provider, saying why and when it could take
  // the request (0: unknown). Returns kSkip, so a hook can `return ctx.skip(...)`.
  Status skip(std::string_view reason, uint64_t retry_after_ms = 0) {
    auto s = host().ctx_skip(ctx_, view(reason), retry_after_ms);
    return s == FERRY_OK ? Status::kSkip : static_cast<Status>(s);
  }

  // Runs a shared-state operation for the hook being run and returns the
  // hook's status: `then` decides it from the result. On the memory backend
  // the answer is there at once and `then`'s status is returned directly;
  // otherwise this returns kPause and `then`'s status later resumes the hook
  // (on this request's thread). `then` does not run if the request ended
  // meanwhile. `then` may itself return kPause after starting more work (a
  // second state_then, a schedule()) that will resume the hook.
  Status state_then(const StateOp& op, std::function<Status(Context&, const StateResult&)> then);
  // The same for several operations at once: they are sent together (one
  // round trip on Redis, which pipelines them) and `then` sees every result,
  // in order, once all are in. Each operation is atomic on its own; the set
  // is not (give back what was taken when one is refused).
  Status state_all_then(std::vector<StateOp> ops,
                        std::function<Status(Context&, const std::vector<StateResult>&)> then);

  // An internal request through this gateway's pipelines (ABI 1.2), e.g.
  // ("embeddings", {"model": ..., "input": ...}); no middleware runs on it.
  // Returns kPause (or an error at once); `then` gets the status and JSON
  // body on this request's thread and its status resumes the hook.
  Status call_then(std::string_view operation, std::string_view json_body,
                   std::function<Status(Context&, int status, std::string_view body)> then);

  // A new document owned by this request (freed when it ends).
  std::optional<Json> parse(std::string_view json_text) {
    ferry_json* out = nullptr;
    if (host().json_new(ctx_, view(json_text), &out) != FERRY_OK) return std::nullopt;
    return Json(out);
  }
  std::optional<Json> copy(const Json& src) {
    ferry_json* out = nullptr;
    if (host().json_copy(ctx_, src.handle(), &out) != FERRY_OK) return std::nullopt;
    return Json(out);
  }

  ferry_ctx* handle() const { return ctx_; }

 private:
  static void run_task(ferry_task* task, int32_t cancelled) {
    std::unique_ptr<ferry_task> owned(task);
    detail::SelfScope scope(owned->self);
    try {
      owned->fn(cancelled != 0);
    } catch (...) {
      sdk::log(LogLevel::kError, "scheduled task threw an exception");
    }
  }
  ferry_ctx* ctx_;
};

inline Status Context::state_then(const StateOp& op_in,
                                  std::function<Status(Context&, const StateResult&)> then) {
  // Whether the answer came before state_call returned: then its status is
  // this hook's, and nobody must call resume().
  struct Flow {
    bool calling = true;
    bool answered = false;
    Status status = Status::kContinue;
  };
  auto flow = std::make_shared<Flow>();
  StateOp op = op_in;
  ferry_ctx* c = ctx_;
  auto* task = new ferry_task{nullptr,
                              [flow, c, then = std::move(then)](const ferry_state_result& r) {
                                if (r.cancelled) return;
                                Context ctx(c);
                                Status s;
                                try {
                                  s = then(ctx, StateResult::from(r));
                                } catch (...) {
                                  s = Status::kInternal;
                                }
                                if (flow->calling) {
                                  flow->answered = true;
                                  flow->status = s;
                                } else if (s != Status::kPause) {
                                  // kPause: `then` started more work that resumes the hook.
                                  ctx.resume(s);
                                }
                              },
                              nullptr};
  task->self = detail::current_self();
  auto s = host().state_call(detail::current_self(), ctx_, &op.request(), &detail::run_state_task, task);
  flow->calling = false;
  if (s != FERRY_OK) {
    delete task;
    return static_cast<Status>(s);
  }
  return flow->answered ? flow->status : Status::kPause;
}

inline Status Context::state_all_then(std::vector<StateOp> ops,
                                      std::function<Status(Context&, const std::vector<StateResult>&)> then) {
  struct Join {
    size_t pending = 0;
    std::vector<StateResult> results;
    std::vector<std::string> data;  // owned copies: results' views point here
    bool calling = true;            // still inside state_all_then
    bool answered = false;
    bool cancelled = false;
    Status status = Status::kContinue;
    ferry_ctx* ctx = nullptr;
    std::function<Status(Context&, const std::vector<StateResult>&)> then;
    // The last answer decides, like state_then's single one.
    void finish() {
      if (cancelled) return;
      Context c(ctx);
      for (size_t i = 0; i < results.size(); ++i) results[i].data = data[i];
      Status s;
      try {
        s = then(c, results);
      } catch (...) {
        s = Status::kInternal;
      }
      if (calling) {
        answered = true;
        status = s;
      } else if (s != Status::kPause) {
        c.resume(s);
      }
    }
  };
  auto join = std::make_shared<Join>();
  join->pending = ops.size();
  join->results.resize(ops.size());
  join->data.resize(ops.size());
  join->ctx = ctx_;
  join->then = std::move(then);
  if (ops.empty()) {
    join->finish();
    return join->status;
  }
  for (size_t i = 0; i < ops.size(); ++i) {
    auto* task = new ferry_task{nullptr,
                                [join, i](const ferry_state_result& r) {
                                  if (r.cancelled) join->cancelled = true;
                                  join->results[i] = StateResult::from(r);
                                  join->data[i] = std::string(sv(r.data));
                                  if (--join->pending == 0) join->finish();
                                },
                                nullptr};
    task->self = detail::current_self();
    auto st =
        host().state_call(detail::current_self(), ctx_, &ops[i].request(), &detail::run_state_task, task);
    if (st != FERRY_OK) {
      delete task;
      join->results[i].status = static_cast<Status>(st);
      if (--join->pending == 0) join->finish();
    }
  }
  join->calling = false;
  return join->answered ? join->status : Status::kPause;
}

namespace detail {
inline void run_call_task(ferry_task* task, int32_t status, ferry_view body, int32_t cancelled) {
  std::unique_ptr<ferry_task> owned(task);
  detail::SelfScope scope(owned->self);
  try {
    owned->call_fn(status, sv(body), cancelled != 0);
  } catch (...) {
    sdk::log(LogLevel::kError, "call callback threw an exception");
  }
}
}  // namespace detail

inline Status Context::call_then(std::string_view operation, std::string_view json_body,
                                 std::function<Status(Context&, int, std::string_view)> then) {
  ferry_ctx* c = ctx_;
  auto* task = new ferry_task{nullptr, nullptr,
                              [c, then = std::move(then)](int status, std::string_view body, bool cancelled) {
                                if (cancelled) return;
                                Context ctx(c);
                                Status s;
                                try {
                                  s = then(ctx, status, body);
                                } catch (...) {
                                  s = Status::kInternal;
                                }
                                if (s != Status::kPause) ctx.resume(s);
                              }};
  task->self = detail::current_self();
  auto s = host().ctx_call(ctx_, view(operation), view(json_body), &detail::run_call_task, task);
  if (s != FERRY_OK) {
    delete task;
    return static_cast<Status>(s);
  }
  return Status::kPause;  // the answer always comes later, from the pipeline
}

// Who is asking, by the conventions Ferry's plugins share (1.2), for limits,
// budgets and logs; empty when it cannot be told.
// - "key": the auth plugin's key id (tag "key"), else a hash of the client's
//   own Authorization or x-api-key header (never the credential itself).
// - "user": tag "user", else the x-ferry-user header, else the request's "user".
// - "team": tag "team".
inline std::string requester(const Context& ctx, const Json& request, std::string_view who) {
  if (who == "team") return std::string(ctx.tag("team").value_or(""));
  if (who == "user") {
    if (auto t = ctx.tag("user")) return std::string(*t);
    if (auto h = ctx.header("x-ferry-user")) return std::string(*h);
    return std::string(request.string("/user").value_or(""));
  }
  if (who == "key") {
    if (auto t = ctx.tag("key")) return std::string(*t);
    auto h = ctx.header("authorization");
    if (!h) h = ctx.header("x-api-key");
    if (!h) return {};
    char buf[20];
    std::snprintf(buf, sizeof buf, "h%016llx", static_cast<unsigned long long>(stable_hash(*h)));
    return buf;
  }
  return {};
}

}  // namespace ferry::sdk

#endif  // FERRY_SDK_CONTEXT_HPP
