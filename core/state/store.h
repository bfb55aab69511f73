#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <ferry/ferry.h>

#include "core/config/config.h"

namespace ferry::state {

// One shared-state operation (ferry_state_request, with the key already
// namespaced by the host).
struct Op {
  ferry_state_op op = FERRY_STATE_GET;
  uint32_t flags = 0;
  std::string key;
  std::string value;
  double amount = 0;
  double limit = 0;
  double rate = 0;
  uint64_t ttl_ms = 0;
  size_t strip = 0;  // SCAN: leading characters to remove from the keys listed
};

struct Result {
  static Result unavailable() {
    Result r;
    r.status = FERRY_ERR_UNAVAILABLE;
    return r;
  }
  ferry_status status = FERRY_OK;
  bool applied = false;
  double value = 0;
  uint64_t retry_after_ms = 0;
  std::string data;
};

using Callback = std::function<void(Result&&)>;

// A backend. Thread-safe; no call blocks the caller.
class Store {
 public:
  virtual ~Store() = default;
  // Completes `op` right away when the backend can (memory): true, `out` set.
  virtual bool try_now(const Op& op, Result& out) = 0;
  // Otherwise: `done` runs exactly once, on the backend's own thread.
  virtual void submit(Op op, Callback done) = 0;
  virtual std::string_view backend() const = 0;
  // False while the backend cannot be reached (Redis down).
  virtual bool available() const = 0;
  // Stops background threads; pending operations complete with UNAVAILABLE.
  virtual void stop() {}

  // The backend the config names; null with `error` set when it cannot start
  // (an unusable SQLite file). A Redis that is down is not an error: the store
  // reconnects by itself.
  static std::unique_ptr<Store> make(const config::StateConfig& config, std::string& error);
};

// What a key holds between operations, for backends that run the operations
// themselves (memory, SQLite); Redis runs the same rules as Lua scripts.
struct Cell {
  std::string value;
  int64_t expires_at_ms = 0;  // 0: never
};

// Applies `op` to the cell (absent: std::nullopt; the function may create or
// erase it) at time now_ms. Not for SCAN. The rules of every operation live
// here once.
Result apply(const Op& op, std::optional<Cell>& cell, int64_t now_ms);

// Milliseconds since the Unix epoch.
int64_t now_ms();

// The shortest text that reads back as the same double.
std::string format_number(double v);

}  // namespace ferry::state
