// ferry/sdk/state.hpp - Shared state (ABI 1.2): operations on the host's memory / Redis / SQLite service.
// Part of the C++ wrapper; include <ferry/plugin.hpp>, which includes every part in order.
#ifndef FERRY_SDK_STATE_HPP
#define FERRY_SDK_STATE_HPP

#ifndef FERRY_PLUGIN_HPP
#error "include <ferry/plugin.hpp>"
#endif

namespace ferry::sdk {

// ---- Shared state (ABI 1.2): one service, memory / Redis / SQLite behind it.

// One operation; build it with the named constructors.
struct StateOp {
  ferry_state_request req{};
  std::string key;  // owned copies: the request's views point here
  std::string value;

  static StateOp get(std::string_view key) { return make(FERRY_STATE_GET, key); }
  static StateOp set(std::string_view key, std::string_view value, uint64_t ttl_ms = 0,
                     bool if_absent = false) {
    auto op = make(FERRY_STATE_SET, key);
    op.value = value;
    op.req.ttl_ms = ttl_ms;
    op.req.flags = if_absent ? FERRY_STATE_IF_ABSENT : 0u;
    return op;
  }
  static StateOp remove(std::string_view key) { return make(FERRY_STATE_DELETE, key); }
  // counter += amount unless that passes limit; a new counter lives ttl_ms.
  static StateOp add(std::string_view key, double amount, double limit, uint64_t ttl_ms = 0) {
    auto op = make(FERRY_STATE_ADD, key);
    op.req.amount = amount;
    op.req.limit = limit;
    op.req.ttl_ms = ttl_ms;
    return op;
  }
  static StateOp take_bucket(std::string_view key, double amount, double capacity, double per_second) {
    auto op = make(FERRY_STATE_TAKE_BUCKET, key);
    op.req.amount = amount;
    op.req.limit = capacity;
    op.req.rate = per_second;
    return op;
  }
  static StateOp take_window(std::string_view key, double amount, double limit, uint64_t window_ms) {
    auto op = make(FERRY_STATE_TAKE_WINDOW, key);
    op.req.amount = amount;
    op.req.limit = limit;
    op.req.ttl_ms = window_ms;
    return op;
  }
  static StateOp scan(std::string_view prefix, size_t max = 1000) {
    auto op = make(FERRY_STATE_SCAN, prefix);
    op.req.limit = static_cast<double>(max);
    return op;
  }
  // Applies even past the limit: corrections after the fact.
  StateOp& force() {
    req.flags |= FERRY_STATE_FORCE;
    return *this;
  }
  const ferry_state_request& request() {
    req.key = view(key);
    req.value = view(value);
    return req;
  }

 private:
  static StateOp make(ferry_state_op kind, std::string_view key) {
    StateOp op;
    op.req.struct_size = sizeof op.req;
    op.req.op = kind;
    op.key = key;
    return op;
  }
};

struct StateResult {
  Status status = Status::kContinue;
  bool applied = false;
  double value = 0;
  uint64_t retry_after_ms = 0;
  std::string_view data;  // valid during the callback only
  bool ok() const { return status == Status::kContinue; }
  bool not_found() const { return status == Status::kNotFound; }
  // The backend is down: apply the plugin's fail-open / fail-closed policy.
  bool unavailable() const { return status == Status::kUnavailable; }

  static StateResult from(const ferry_state_result& r) {
    return StateResult{static_cast<Status>(r.status), r.applied != 0, r.value, r.retry_after_ms, sv(r.data)};
  }
};

namespace detail {
inline void run_state_task(ferry_task* task, const ferry_state_result* result) {
  std::unique_ptr<ferry_task> owned(task);
  detail::SelfScope scope(owned->self);
  try {
    owned->state_fn(*result);
  } catch (...) {
    sdk::log(LogLevel::kError, "state callback threw an exception");
  }
}
}  // namespace detail

// A state operation outside a request (create, on_complete, on_event, admin
// work): `done` runs once, on any thread. Errors come back through `done`.
inline void state_call(StateOp op, std::function<void(const StateResult&)> done) {
  auto* task = new ferry_task{nullptr,
                              [done = std::move(done)](const ferry_state_result& r) {
                                if (done && !r.cancelled) done(StateResult::from(r));
                              },
                              nullptr};
  task->self = detail::current_self();
  auto s = host().state_call(detail::current_self(), nullptr, &op.request(), &detail::run_state_task, task);
  if (s != FERRY_OK) {
    ferry_state_result failed{sizeof failed, s, 0, 0, 0, 0, {}};
    detail::run_state_task(task, &failed);
  }
}

}  // namespace ferry::sdk

#endif  // FERRY_SDK_STATE_HPP
