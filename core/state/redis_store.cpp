// Shared state in Redis, for several ferryd instances. One thread owns one
// connection and pipelines: it takes every operation queued since its last
// round trip, sends them in one write and reads the replies, so a thousand
// concurrent rate-limit checks cost a handful of round trips, and no worker
// thread ever waits on Redis. Counters, buckets and windows are Lua scripts,
// atomic on the server, so instances never overshoot a limit together.
#include <hiredis/hiredis.h>
#include <sys/time.h>

#include <atomic>
#include <charconv>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/log/log.h"
#include "core/metrics/metrics.h"
#include "core/state/store.h"

namespace ferry::state {
namespace {

// The same rules as apply() in store.cpp; the cell formats match, so the
// values read back alike on every backend. Numbers leave as %.17g strings:
// Redis would truncate Lua numbers in replies to integers.
constexpr const char* kPrelude = R"lua(
local function fmt(x) return string.format('%.17g', x) end
local function ceil(x) return math.ceil(x - 1e-6) end
local function now_ms() local t = redis.call('TIME'); return t[1] * 1000 + math.floor(t[2] / 1000) end
local amount, limit, arg, force = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4] == '1'
)lua";

constexpr const char* kAdd = R"lua(
local v = redis.call('GET', KEYS[1])
local cur = tonumber(v or '0') or 0
local nxt = cur + amount
if amount > 0 and nxt > limit and not force then return {0, fmt(cur), 0} end
if v then
  redis.call('SET', KEYS[1], fmt(nxt), 'KEEPTTL')
elseif arg > 0 then
  redis.call('SET', KEYS[1], fmt(nxt), 'PX', arg)
else
  redis.call('SET', KEYS[1], fmt(nxt))
end
return {1, fmt(nxt), 0}
)lua";

constexpr const char* kBucket = R"lua(
local now = now_ms()
local rate = arg
local tokens, last = limit, now
local v = redis.call('GET', KEYS[1])
if v then
  local a, b = string.match(v, '^(%S+) (%S+)$')
  tokens = tonumber(a) or limit
  last = tonumber(b) or now
end
tokens = math.min(limit, tokens + math.max(0, now - last) / 1000 * rate)
local applied, retry = 0, 0
if amount <= tokens or amount <= 0 or force then
  tokens = math.min(limit, tokens - amount)
  applied = 1
elseif amount <= limit and rate > 0 then
  retry = ceil((amount - tokens) / rate * 1000)
end
local to_full = 86400000
if rate > 0 then to_full = (limit - tokens) / rate * 1000 end
to_full = math.min(to_full, 86400000 * 30)
redis.call('SET', KEYS[1], fmt(tokens) .. ' ' .. string.format('%d', now), 'PX', math.floor(to_full) + 1000)
return {applied, fmt(tokens), retry}
)lua";

constexpr const char* kWindow = R"lua(
local now = now_ms()
local w = math.max(arg, 1)
local start, cur, prev = now - now % w, 0, 0
local v = redis.call('GET', KEYS[1])
if v then
  local a, b, c = string.match(v, '^(%S+) (%S+) (%S+)$')
  start, cur, prev = tonumber(a) or start, tonumber(b) or 0, tonumber(c) or 0
end
if now >= start + w then
  if now < start + 2 * w then prev = cur else prev = 0 end
  cur = 0
  start = now - now % w
end
local elapsed = now - start
local est = prev * (w - elapsed) / w + cur
local applied, retry = 0, 0
if amount <= 0 or est + amount <= limit or force then
  cur = math.max(0, cur + amount)
  est = est + amount
  applied = 1
elseif amount <= limit then
  if cur + amount <= limit then
    retry = ceil(w * (1 - (limit - cur - amount) / prev) - elapsed)
  else
    local needed = 0
    if cur > 0 then needed = w * (1 - (limit - amount) / cur) end
    retry = ceil(w - elapsed + math.max(0, needed))
  end
  retry = math.max(retry, 1)
end
redis.call('SET', KEYS[1], string.format('%d', start) .. ' ' .. fmt(cur) .. ' ' .. fmt(prev), 'PX',
           math.max(1, start + 2 * w - now))
return {applied, fmt(math.max(0, limit - est)), retry}
)lua";

// How long the connection may sit idle before a PING checks that Redis still
// answers.
constexpr std::chrono::milliseconds kIdlePing{1000};

struct Endpoint {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string password;
  int db = 0;
};

// redis://[[user]:password@]host[:port][/db]
bool parse_url(std::string_view url, Endpoint& out) {
  if (!url.starts_with("redis://")) return false;
  url.remove_prefix(8);
  if (auto at = url.rfind('@'); at != std::string_view::npos) {
    auto creds = url.substr(0, at);
    auto colon = creds.find(':');
    out.password = std::string(colon == std::string_view::npos ? creds : creds.substr(colon + 1));
    url.remove_prefix(at + 1);
  }
  auto slash = url.find('/');
  auto hostport = url.substr(0, slash);
  if (slash != std::string_view::npos && slash + 1 < url.size()) {
    auto db = url.substr(slash + 1);
    auto [p, ec] = std::from_chars(db.data(), db.data() + db.size(), out.db);
    if (ec != std::errc() || p != db.data() + db.size()) return false;
  }
  std::string_view port;
  if (hostport.starts_with('[')) {  // [::1]:6379
    auto close = hostport.find(']');
    if (close == std::string_view::npos) return false;
    port = hostport.substr(close + 1);
    if (!port.empty() && !port.starts_with(':')) return false;
    if (!port.empty()) port.remove_prefix(1);
    hostport = hostport.substr(1, close - 1);
  } else if (auto colon = hostport.rfind(':'); colon != std::string_view::npos) {
    port = hostport.substr(colon + 1);
    hostport = hostport.substr(0, colon);
  }
  if (!port.empty()) {
    auto [p, ec] = std::from_chars(port.data(), port.data() + port.size(), out.port);
    if (ec != std::errc() || p != port.data() + port.size()) return false;
  }
  if (!hostport.empty()) out.host = std::string(hostport);
  return true;
}

struct ReplyDeleter {
  void operator()(redisReply* r) const { freeReplyObject(r); }
};
using Reply = std::unique_ptr<redisReply, ReplyDeleter>;

timeval to_timeval(uint32_t ms) {
  return timeval{static_cast<time_t>(ms / 1000), static_cast<suseconds_t>((ms % 1000) * 1000)};
}

std::string number_arg(double v) {
  if (std::isinf(v)) return v > 0 ? "1e308" : "-1e308";
  return format_number(v);
}

double reply_number(const redisReply* r) {
  if (!r) return 0;
  if (r->type == REDIS_REPLY_INTEGER) return static_cast<double>(r->integer);
  if (r->type != REDIS_REPLY_STRING) return 0;
  double v = 0;
  std::from_chars(r->str, r->str + r->len, v);
  return v;
}

class RedisStore final : public Store {
 public:
  RedisStore(const config::StateConfig& config, Endpoint endpoint)
      : config_(config), endpoint_(std::move(endpoint)) {
    thread_ = std::thread([this] { run(); });
  }
  ~RedisStore() override { stop(); }

  bool try_now(const Op&, Result&) override { return false; }

  void submit(Op op, Callback done) override {
    {
      std::lock_guard lock(mu_);
      // While Redis is down, answer at once: the plugin's fail-open or
      // fail-closed policy decides, and nothing queues up behind a dead link.
      if (!stopping_ && up_.load(std::memory_order_relaxed)) {
        queue_.push_back({std::move(op), std::move(done)});
        cv_.notify_one();
        return;
      }
    }
    Result r;
    r.status = FERRY_ERR_UNAVAILABLE;
    done(std::move(r));
  }

  std::string_view backend() const override { return "redis"; }
  bool available() const override { return up_.load(std::memory_order_relaxed); }

  void stop() override {
    {
      std::lock_guard lock(mu_);
      if (stopping_) return;
      stopping_ = true;
      cv_.notify_all();
    }
    if (thread_.joinable()) thread_.join();
  }

  // Waits (control thread, at start-up) for the first connection attempt, so
  // that ferryd reports a Redis that is down before it serves.
  bool wait_first_attempt() {
    std::unique_lock lock(mu_);
    cv_attempt_.wait(lock, [this] { return attempted_; });
    return up_.load();
  }

 private:
  struct Pending {
    Op op;
    Callback done;
  };

  void run() {
    auto backoff = std::chrono::milliseconds(100);
    while (true) {
      if (!ctx_) {
        bool ok = connect();
        // Before the first attempt is announced: ferryd says "ready" only once
        // this is logged and available() is right.
        set_up(ok);
        {
          std::lock_guard lock(mu_);
          attempted_ = true;
        }
        cv_attempt_.notify_all();
        if (!ok) {
          fail_queued();
          std::unique_lock lock(mu_);
          if (cv_.wait_for(lock, backoff, [this] { return stopping_; })) break;
          backoff = std::min(backoff * 2, std::chrono::milliseconds(1000));
          continue;
        }
        backoff = std::chrono::milliseconds(100);
      }
      std::vector<Pending> batch;
      {
        std::unique_lock lock(mu_);
        bool woken = cv_.wait_for(lock, kIdlePing, [this] { return stopping_ || !queue_.empty(); });
        if (stopping_ && queue_.empty()) break;
        if (!woken) {
          // Idle: a Redis that stopped answering would otherwise count as up
          // (in /health and ferry_state_backend_up) until a plugin next asks.
          lock.unlock();
          ping();
          continue;
        }
        size_t n = std::min<size_t>(queue_.size(), 1024);
        batch.reserve(n);
        for (size_t i = 0; i < n; ++i) {
          batch.push_back(std::move(queue_.front()));
          queue_.pop_front();
        }
      }
      execute(batch);
    }
    fail_queued();
    disconnect();
  }

  void set_up(bool up) {
    bool was = up_.exchange(up);
    metrics::Registry::global().set("ferry_state_backend_up{backend=\"redis\"}", up ? 1 : 0);
    // up_ starts false: without reported_, a Redis down at start-up would
    // never be logged.
    if (was == up && reported_) return;
    reported_ = true;
    if (up)
      log::get().info("state: connected to redis at {}:{} (db {})", endpoint_.host, endpoint_.port,
                      endpoint_.db);
    else
      log::get().warn(
          "state: redis at {}:{} is unreachable ({}); plugins apply their fail-open/closed policy",
          endpoint_.host, endpoint_.port, last_error_);
  }

  bool connect() {
    redisContext* c = redisConnectWithTimeout(endpoint_.host.c_str(), endpoint_.port,
                                              to_timeval(config_.connect_timeout_ms));
    if (!c || c->err) {
      last_error_ = c ? c->errstr : "out of memory";
      if (c) redisFree(c);
      return false;
    }
    ctx_ = c;
    redisSetTimeout(ctx_, to_timeval(config_.command_timeout_ms));
    redisEnableKeepAlive(ctx_);
    if (!endpoint_.password.empty() && !simple({"AUTH", endpoint_.password})) return fail_connect();
    if (endpoint_.db != 0 && !simple({"SELECT", std::to_string(endpoint_.db)})) return fail_connect();
    for (auto [body, sha] : {std::pair{kAdd, &sha_add_}, {kBucket, &sha_bucket_}, {kWindow, &sha_window_}}) {
      Reply r = command({"SCRIPT", "LOAD", std::string(kPrelude) + body});
      if (!r || r->type != REDIS_REPLY_STRING) return fail_connect();
      *sha = std::string(r->str, r->len);
    }
    return true;
  }
  bool fail_connect() {
    if (last_error_.empty()) last_error_ = "handshake failed";
    disconnect();
    return false;
  }
  void disconnect() {
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
  }

  Reply command(const std::vector<std::string>& args) {
    append(args);
    return read();
  }
  bool simple(const std::vector<std::string>& args) {
    Reply r = command(args);
    if (r && r->type == REDIS_REPLY_ERROR) last_error_ = std::string(r->str, r->len);
    return r && r->type != REDIS_REPLY_ERROR;
  }
  void append(const std::vector<std::string>& args) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    redisAppendCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data());
  }
  Reply read() {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK) {
      last_error_ = ctx_->errstr;
      return nullptr;
    }
    return Reply(static_cast<redisReply*>(raw));
  }

  std::vector<std::string> args_for(const Op& op) const {
    bool force = op.flags & FERRY_STATE_FORCE;
    auto script = [&](const std::string& sha, double arg) {
      return std::vector<std::string>{"EVALSHA",
                                      sha,
                                      "1",
                                      key(op.key),
                                      number_arg(op.amount),
                                      number_arg(op.limit),
                                      number_arg(arg),
                                      force ? "1" : "0"};
    };
    switch (op.op) {
      case FERRY_STATE_GET: return {"GET", key(op.key)};
      case FERRY_STATE_SET: {
        std::vector<std::string> a{"SET", key(op.key), op.value};
        if (op.ttl_ms) {
          a.push_back("PX");
          a.push_back(std::to_string(op.ttl_ms));
        }
        if (op.flags & FERRY_STATE_IF_ABSENT) a.push_back("NX");
        return a;
      }
      case FERRY_STATE_DELETE: return {"DEL", key(op.key)};
      case FERRY_STATE_ADD: return script(sha_add_, static_cast<double>(op.ttl_ms));
      case FERRY_STATE_TAKE_BUCKET: return script(sha_bucket_, op.rate);
      case FERRY_STATE_TAKE_WINDOW: return script(sha_window_, static_cast<double>(op.ttl_ms));
      default: return {};
    }
  }
  static std::string key(std::string_view k) { return "ferry:" + std::string(k); }

  static Result to_result(const Op& op, const redisReply* r) {
    Result out;
    if (r->type == REDIS_REPLY_ERROR) {
      out.status = FERRY_ERR_INTERNAL;
      out.data = std::string(r->str, r->len);
      return out;
    }
    switch (op.op) {
      case FERRY_STATE_GET:
        if (r->type == REDIS_REPLY_NIL)
          out.status = FERRY_ERR_NOT_FOUND;
        else
          out.data = std::string(r->str, r->len);
        break;
      case FERRY_STATE_SET: out.applied = r->type == REDIS_REPLY_STATUS; break;
      case FERRY_STATE_DELETE: out.applied = r->integer > 0; break;
      default:
        if (r->type == REDIS_REPLY_ARRAY && r->elements == 3) {
          out.applied = reply_number(r->element[0]) != 0;
          out.value = reply_number(r->element[1]);
          out.retry_after_ms = static_cast<uint64_t>(std::max(0.0, reply_number(r->element[2])));
        } else {
          out.status = FERRY_ERR_INTERNAL;
        }
    }
    return out;
  }

  void ping() {
    if (command({"PING"})) return;
    disconnect();
    set_up(false);
    fail_queued();  // as after a failed batch
  }

  void execute(std::vector<Pending>& batch) {
    std::vector<Result> results(batch.size());
    std::vector<size_t> piped;
    for (size_t i = 0; i < batch.size(); ++i) {
      if (batch[i].op.op == FERRY_STATE_SCAN) continue;
      auto args = args_for(batch[i].op);
      if (args.empty()) {
        results[i].status = FERRY_ERR_INVALID_ARGUMENT;
        continue;
      }
      append(args);
      piped.push_back(i);
    }
    bool broken = false;
    for (size_t i : piped) {
      Reply r = broken ? nullptr : read();
      if (!r) {
        broken = true;
        results[i].status = FERRY_ERR_UNAVAILABLE;
        continue;
      }
      results[i] = to_result(batch[i].op, r.get());
      if (results[i].status == FERRY_ERR_INTERNAL && results[i].data.starts_with("NOSCRIPT")) {
        // Someone ran SCRIPT FLUSH: reconnecting loads the scripts again.
        results[i].status = FERRY_ERR_UNAVAILABLE;
        broken = true;
      } else if (results[i].status == FERRY_ERR_INTERNAL) {
        log::get().error("state: redis refused {}: {}", batch[i].op.key, results[i].data);
        results[i].data.clear();
      }
    }
    for (size_t i = 0; i < batch.size() && !broken; ++i)
      if (batch[i].op.op == FERRY_STATE_SCAN) results[i] = scan(batch[i].op, broken);
    if (broken) {
      disconnect();
      set_up(false);
    }
    for (size_t i = 0; i < batch.size(); ++i) {
      if (broken && batch[i].op.op == FERRY_STATE_SCAN) results[i].status = FERRY_ERR_UNAVAILABLE;
      batch[i].done(std::move(results[i]));
    }
    // Requests queued behind this batch get their answer now, not after a
    // reconnection attempt that a silent Redis makes time out again.
    if (broken) fail_queued();
  }

  Result scan(const Op& op, bool& broken) {
    Result out;
    size_t max = op.limit > 0 ? static_cast<size_t>(op.limit) : 1000;
    std::string pattern = "ferry:";
    for (char c : op.key) {
      if (c == '*' || c == '?' || c == '[' || c == ']' || c == '\\') pattern += '\\';
      pattern += c;
    }
    pattern += '*';
    nlohmann::json list = nlohmann::json::array();
    std::string cursor = "0";
    do {
      Reply r = command({"SCAN", cursor, "MATCH", pattern, "COUNT", "1000"});
      if (!r || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
        broken = !r;
        out.status = broken ? FERRY_ERR_UNAVAILABLE : FERRY_ERR_INTERNAL;
        return out;
      }
      cursor.assign(r->element[0]->str, r->element[0]->len);
      const redisReply* keys = r->element[1];
      for (size_t i = 0; i < keys->elements && list.size() < max; ++i) {
        std::string full(keys->element[i]->str, keys->element[i]->len);
        Reply v = command({"GET", full});
        if (!v) {
          broken = true;
          out.status = FERRY_ERR_UNAVAILABLE;
          return out;
        }
        if (v->type != REDIS_REPLY_STRING) continue;  // expired meanwhile, or not ours
        std::string k = full.substr(std::min(full.size(), 6 + op.strip));
        list.push_back({{"key", k}, {"value", std::string(v->str, v->len)}});
      }
    } while (cursor != "0" && list.size() < max);
    out.data = list.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
    out.value = static_cast<double>(list.size());
    return out;
  }

  void fail_queued() {
    std::deque<Pending> pending;
    {
      std::lock_guard lock(mu_);
      pending.swap(queue_);
    }
    for (auto& p : pending) {
      Result r;
      r.status = FERRY_ERR_UNAVAILABLE;
      p.done(std::move(r));
    }
  }

  const config::StateConfig config_;
  const Endpoint endpoint_;
  redisContext* ctx_ = nullptr;  // state thread only
  std::string sha_add_, sha_bucket_, sha_window_;
  std::string last_error_;

  std::mutex mu_;
  std::condition_variable cv_, cv_attempt_;
  std::deque<Pending> queue_;
  bool stopping_ = false;
  bool attempted_ = false;
  bool reported_ = false;  // state thread only: the first attempt's outcome was logged
  std::atomic<bool> up_{false};
  std::thread thread_;
};

}  // namespace

std::unique_ptr<Store> make_redis_store(const config::StateConfig& config, std::string& error) {
  Endpoint endpoint;
  if (!parse_url(config.redis_url, endpoint)) {
    error =
        "[state] url: cannot read \"" + config.redis_url + "\" (expected redis://[:password@]HOST:PORT/DB)";
    return nullptr;
  }
  auto store = std::make_unique<RedisStore>(config, std::move(endpoint));
  store->wait_first_attempt();
  return store;
}

}  // namespace ferry::state
