// ferry-bench-sse: a load generator for OpenAI-style streaming chat requests.
//
// It keeps N connections busy with `"stream":true` requests until R have
// completed, and measures for every request the time to the first `data:`
// event (TTFB) and the total time (until the terminating chunk). With --hold
// every connection carries exactly one request, all connections are opened
// before any request is sent, and the tool records how many streams were open
// at the same time (response head received, `data: [DONE]` not yet).
//
// Single-threaded Asio with coroutines; the HTTP/1.1 request is written by hand
// and the response is decoded by a small incremental parser (chunked,
// Content-Length or close-delimited bodies).
//
// g++ 12 coroutine pitfalls avoided on purpose: no co_await inside an if
// condition, &&, || or ?:, and no ?: temporaries passed into a co_await call.
#include <sys/resource.h>

#include <algorithm>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using boost::system::error_code;
using Clock = std::chrono::steady_clock;
constexpr auto kNoThrow = asio::as_tuple(asio::use_awaitable);

constexpr const char* kUsage =
    "usage: ferry-bench-sse --target HOST:PORT [--path PATH] [--model M] [--concurrency N]\n"
    "                       [--requests R] [--body-words W] [--hold] [--timeout-s S]\n"
    "                       [--header 'Name: value']... [--progress]\n"
    "\n"
    "  --target HOST:PORT  server to load (IPv6 as [::1]:8080)\n"
    "  --path PATH         request path (default /v1/chat/completions)\n"
    "  --model M           \"model\" of the requests (default bench)\n"
    "  --concurrency N     connections kept busy (default 1)\n"
    "  --requests R        requests to complete in total (default 1)\n"
    "  --body-words W      words in the user message (default 2)\n"
    "  --hold              one request per connection; open all connections first, then\n"
    "                      send every request at once (max_concurrent_open is the check)\n"
    "  --timeout-s S       per-request limit, connect included (default 120)\n"
    "  --header H          extra request header, repeatable\n"
    "  --progress          print open/finished counts to stderr every second\n"
    "\n"
    "Prints one JSON line: requests, errors, ttfb_p50_us, ttfb_p99_us, total_p50_us,\n"
    "total_p99_us, max_concurrent_open, wall_s. Latencies are over successful requests.\n"
    "An error is a failed connect, a non-200 status, a stream that ends without\n"
    "data: [DONE], an \"error\" event, an I/O error or a timeout; a breakdown goes to stderr.\n"
    "Exit status: 0 without errors, 1 with errors, 2 for a bad command line.\n";

struct Options {
  std::string host = "127.0.0.1";
  std::string port;
  std::string path = "/v1/chat/completions";
  std::string model = "bench";
  size_t concurrency = 1;
  size_t requests = 1;
  size_t body_words = 2;
  bool hold = false;
  bool progress = false;
  long timeout_s = 120;
  std::vector<std::string> headers;
};

// ---------------------------------------------------------------- response parsing

bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    char x = a[i] >= 'A' && a[i] <= 'Z' ? static_cast<char>(a[i] - 'A' + 'a') : a[i];
    char y = b[i] >= 'A' && b[i] <= 'Z' ? static_cast<char>(b[i] - 'A' + 'a') : b[i];
    if (x != y) return false;
  }
  return true;
}

bool icontains(std::string_view hay, std::string_view needle) {
  for (size_t i = 0; i + needle.size() <= hay.size(); ++i)
    if (iequals(hay.substr(i, needle.size()), needle)) return true;
  return false;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

// Incremental HTTP/1.1 response decoder; hands decoded body bytes to a callback.
class ResponseParser {
 public:
  enum class Result { kMore, kDone, kBad };

  void reset() {
    state_ = State::kHead;
    line_.clear();
    status_ = 0;
    close_ = false;
    remaining_ = 0;
  }
  bool head_done() const { return state_ != State::kHead; }
  int status() const { return status_; }
  // Whether the server will close the connection after this response.
  bool close() const { return close_; }

  template <class OnBody>
  Result feed(std::string_view in, OnBody&& on_body) {
    size_t i = 0;
    while (i < in.size()) {
      switch (state_) {
        case State::kHead: {
          size_t old = line_.size();
          line_.append(in.substr(i));
          size_t end = line_.find("\r\n\r\n", old >= 3 ? old - 3 : 0);
          if (end == std::string::npos) {
            if (line_.size() > 64 * 1024) return Result::kBad;
            i = in.size();
            break;
          }
          i += end + 4 - old;
          line_.resize(end);
          if (!parse_head()) return Result::kBad;
          line_.clear();
          if (state_ == State::kDone) return Result::kDone;
          break;
        }
        case State::kSize: {
          size_t nl = in.find('\n', i);
          if (nl == std::string_view::npos) {
            line_.append(in.substr(i));
            if (line_.size() > 1024) return Result::kBad;
            i = in.size();
            break;
          }
          line_.append(in.substr(i, nl - i));
          i = nl + 1;
          std::string_view hex = trim(line_);
          hex = hex.substr(0, hex.find(';'));
          uint64_t size = 0;
          auto [p, ec] = std::from_chars(hex.data(), hex.data() + hex.size(), size, 16);
          if (ec != std::errc() || hex.empty()) return Result::kBad;
          (void)p;
          line_.clear();
          if (size == 0) {
            state_ = State::kTrailer;
          } else {
            remaining_ = size;
            state_ = State::kData;
          }
          break;
        }
        case State::kData:
        case State::kLength: {
          size_t take = static_cast<size_t>(std::min<uint64_t>(remaining_, in.size() - i));
          on_body(in.substr(i, take));
          i += take;
          remaining_ -= take;
          if (remaining_ == 0) {
            if (state_ == State::kLength) {
              state_ = State::kDone;
              return Result::kDone;
            }
            state_ = State::kDataEnd;
          }
          break;
        }
        case State::kDataEnd: {  // the CRLF after a chunk's data
          size_t nl = in.find('\n', i);
          if (nl == std::string_view::npos) {
            i = in.size();
            break;
          }
          i = nl + 1;
          state_ = State::kSize;
          break;
        }
        case State::kTrailer: {
          size_t nl = in.find('\n', i);
          if (nl == std::string_view::npos) {
            line_.append(in.substr(i));
            i = in.size();
            break;
          }
          line_.append(in.substr(i, nl - i));
          i = nl + 1;
          bool empty = trim(line_).empty();
          line_.clear();
          if (empty) {
            state_ = State::kDone;
            return Result::kDone;
          }
          break;
        }
        case State::kUntilClose:
          on_body(in.substr(i));
          i = in.size();
          break;
        case State::kDone: return Result::kDone;
      }
    }
    return state_ == State::kDone ? Result::kDone : Result::kMore;
  }

  // The peer closed the connection.
  Result eof() {
    if (state_ == State::kUntilClose || state_ == State::kDone) {
      state_ = State::kDone;
      return Result::kDone;
    }
    return Result::kBad;
  }

 private:
  enum class State { kHead, kSize, kData, kDataEnd, kTrailer, kLength, kUntilClose, kDone };

  bool parse_head() {
    std::string_view head = line_;
    size_t eol = head.find("\r\n");
    std::string_view status_line = head.substr(0, eol);
    if (status_line.size() < 12 || status_line.substr(0, 5) != "HTTP/") return false;
    bool http10 = status_line.substr(0, 8) == "HTTP/1.0";
    auto [p, ec] = std::from_chars(status_line.data() + 9, status_line.data() + 12, status_);
    if (ec != std::errc()) return false;
    (void)p;
    bool chunked = false;
    bool has_length = false;
    bool keep_alive = false;
    uint64_t length = 0;
    while (eol != std::string_view::npos) {
      size_t start = eol + 2;
      eol = head.find("\r\n", start);
      std::string_view field = head.substr(start, eol == std::string_view::npos ? eol : eol - start);
      size_t colon = field.find(':');
      if (colon == std::string_view::npos) continue;
      std::string_view name = trim(field.substr(0, colon));
      std::string_view value = trim(field.substr(colon + 1));
      if (iequals(name, "transfer-encoding")) {
        chunked = icontains(value, "chunked");
      } else if (iequals(name, "content-length")) {
        auto [q, lec] = std::from_chars(value.data(), value.data() + value.size(), length);
        (void)q;
        if (lec != std::errc()) return false;
        has_length = true;
      } else if (iequals(name, "connection")) {
        if (icontains(value, "close")) close_ = true;
        if (icontains(value, "keep-alive")) keep_alive = true;
      }
    }
    if (http10 && !keep_alive) close_ = true;
    if (chunked) {
      state_ = State::kSize;
    } else if (has_length || status_ == 204 || status_ == 304) {
      remaining_ = has_length ? length : 0;
      state_ = remaining_ ? State::kLength : State::kDone;
    } else {
      close_ = true;
      state_ = State::kUntilClose;
    }
    return true;
  }

  State state_ = State::kHead;
  std::string line_;
  int status_ = 0;
  bool close_ = false;
  uint64_t remaining_ = 0;
};

// Scans a decoded text/event-stream body for `data:` lines.
struct SseScan {
  std::string line;
  bool saw_data = false;
  bool saw_done = false;
  bool saw_error = false;

  void reset() {
    line.clear();
    saw_data = saw_done = saw_error = false;
  }
  void feed(std::string_view body) {
    while (!body.empty()) {
      size_t nl = body.find('\n');
      if (nl == std::string_view::npos) {
        line.append(body);
        if (!saw_data && line.size() >= 5 && line.compare(0, 5, "data:") == 0) saw_data = true;
        return;
      }
      if (line.empty()) {
        on_line(body.substr(0, nl));
      } else {
        line.append(body.substr(0, nl));
        on_line(line);
        line.clear();
      }
      body.remove_prefix(nl + 1);
    }
  }
  void on_line(std::string_view l) {
    if (!l.empty() && l.back() == '\r') l.remove_suffix(1);
    if (l.substr(0, 5) != "data:") return;
    saw_data = true;
    std::string_view v = l.substr(5);
    if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
    if (v == "[DONE]")
      saw_done = true;
    else if (v.substr(0, 8) == "{\"error\"")
      saw_error = true;
  }
};

// ---------------------------------------------------------------- load

enum class Outcome { kOk, kConnect, kStatus, kIo, kIncomplete, kNoDone, kErrorEvent, kTimeout, kCount };
constexpr const char* kOutcomeNames[] = {"ok",         "connect", "status",      "io",
                                         "incomplete", "no_done", "error_event", "timeout"};

struct Shared {
  explicit Shared(asio::io_context& io) : gate(io, Clock::time_point::max()) {}
  Options opt;
  tcp::endpoint endpoint;
  std::string request;
  size_t conns = 0;
  size_t issued = 0;
  size_t finished = 0;
  size_t errors = 0;
  size_t by_outcome[static_cast<size_t>(Outcome::kCount)] = {};
  size_t status_counts[6] = {};  // by first digit of non-200 statuses
  size_t open = 0;
  size_t max_open = 0;
  size_t connected = 0;                  // --hold: connections through their first connect attempt
  asio::steady_timer gate;               // --hold: cancelled when every connection is through it
  asio::steady_timer* ticker = nullptr;  // --progress
  std::vector<int64_t> ttfb_us;
  std::vector<int64_t> total_us;
  Clock::time_point started;
  Clock::time_point last_end;
};

struct Conn {
  explicit Conn(asio::io_context& io) : sock(io), deadline(io), buf(64 * 1024) {}
  tcp::socket sock;
  asio::steady_timer deadline;
  bool timed_out = false;
  bool open_stream = false;
  uint64_t generation = 0;  // of the armed deadline
  std::vector<char> buf;
  ResponseParser parser;
  SseScan scan;
};

int64_t micros(Clock::duration d) { return std::chrono::duration_cast<std::chrono::microseconds>(d).count(); }

void arm(Conn& c, long timeout_s) {
  c.timed_out = false;
  c.deadline.expires_after(std::chrono::seconds(timeout_s));
  Conn* cp = &c;  // Conn objects outlive the io_context's run
  uint64_t gen = ++c.generation;
  // A deadline that fired just before it was cancelled must not hit a later request.
  c.deadline.async_wait([cp, gen](const error_code& ec) {
    if (ec || cp->generation != gen) return;
    cp->timed_out = true;
    error_code ignored;
    cp->sock.close(ignored);
  });
}

void disarm(Conn& c) {
  ++c.generation;
  c.deadline.cancel();
}

void close_conn(Conn& c) {
  error_code ignored;
  c.sock.close(ignored);
}

void stream_closed(Shared& s, Conn& c) {
  if (!c.open_stream) return;
  c.open_stream = false;
  --s.open;
}

asio::awaitable<bool> connect(Shared& s, Conn& c) {
  auto [ec] = co_await c.sock.async_connect(s.endpoint, kNoThrow);
  if (ec) {
    close_conn(c);
    co_return false;
  }
  error_code ignored;
  c.sock.set_option(tcp::no_delay(true), ignored);
  co_return true;
}

struct Exchange {
  Outcome outcome = Outcome::kOk;
  int status = 0;
  bool keep_alive = false;
  int64_t ttfb_us = -1;
  int64_t total_us = 0;
};

asio::awaitable<Exchange> exchange(Shared& s, Conn& c) {
  Exchange x;
  auto t0 = Clock::now();
  c.parser.reset();
  c.scan.reset();
  auto [wec, wn] = co_await asio::async_write(c.sock, asio::buffer(s.request), kNoThrow);
  (void)wn;
  if (wec) {
    x.outcome = Outcome::kIo;
    co_return x;
  }
  ResponseParser::Result r = ResponseParser::Result::kMore;
  bool io_error = false;
  bool head_counted = false;
  while (r == ResponseParser::Result::kMore) {
    auto [ec, n] = co_await c.sock.async_read_some(asio::buffer(c.buf), kNoThrow);
    auto now = Clock::now();
    if (ec == asio::error::eof) {
      r = c.parser.eof();
    } else if (ec) {
      io_error = true;
      break;
    } else {
      r = c.parser.feed(std::string_view(c.buf.data(), n),
                        [&c](std::string_view body) { c.scan.feed(body); });
    }
    if (!head_counted && c.parser.head_done() && c.parser.status() == 200) {
      head_counted = c.open_stream = true;
      s.max_open = std::max(s.max_open, ++s.open);
    }
    if (x.ttfb_us < 0 && c.scan.saw_data) x.ttfb_us = micros(now - t0);
    if (c.scan.saw_done) stream_closed(s, c);
  }
  stream_closed(s, c);
  x.total_us = micros(Clock::now() - t0);
  x.status = c.parser.status();
  x.keep_alive = r == ResponseParser::Result::kDone && !c.parser.close();
  if (c.timed_out)
    x.outcome = Outcome::kTimeout;
  else if (io_error)
    x.outcome = Outcome::kIo;
  else if (r != ResponseParser::Result::kDone)
    x.outcome = Outcome::kIncomplete;
  else if (x.status != 200)
    x.outcome = Outcome::kStatus;
  else if (c.scan.saw_error)
    x.outcome = Outcome::kErrorEvent;
  else if (!c.scan.saw_done)
    x.outcome = Outcome::kNoDone;
  co_return x;
}

void record(Shared& s, const Exchange& x) {
  ++s.finished;
  s.last_end = Clock::now();
  if (s.finished == s.opt.requests && s.ticker) s.ticker->cancel();
  ++s.by_outcome[static_cast<size_t>(x.outcome)];
  if (x.outcome != Outcome::kOk) {
    ++s.errors;
    if (x.outcome == Outcome::kStatus && x.status >= 100 && x.status < 600) ++s.status_counts[x.status / 100];
    return;
  }
  s.ttfb_us.push_back(x.ttfb_us < 0 ? x.total_us : x.ttfb_us);
  s.total_us.push_back(x.total_us);
}

// --hold: wait until every connection has made its first connect attempt.
asio::awaitable<void> hold_gate(Shared& s) {
  if (++s.connected == s.conns) {
    s.gate.cancel();
    co_return;
  }
  auto [ec] = co_await s.gate.async_wait(kNoThrow);
  (void)ec;
}

asio::awaitable<void> worker(Shared& s, Conn& c) {
  bool connected = false;
  bool first = true;
  while (s.issued < s.opt.requests) {
    ++s.issued;
    arm(c, s.opt.timeout_s);
    if (!connected) {
      bool ok = co_await connect(s, c);
      if (s.opt.hold && first) co_await hold_gate(s);
      first = false;
      if (!ok) {
        disarm(c);
        Exchange x;
        x.outcome = c.timed_out ? Outcome::kTimeout : Outcome::kConnect;
        record(s, x);
        asio::steady_timer backoff(c.sock.get_executor(), std::chrono::milliseconds(10));
        co_await backoff.async_wait(kNoThrow);
        continue;
      }
      connected = true;
    }
    Exchange x = co_await exchange(s, c);
    disarm(c);
    record(s, x);
    if (x.outcome != Outcome::kOk || !x.keep_alive || s.opt.hold) {
      close_conn(c);
      connected = false;
    }
  }
  close_conn(c);
}

asio::awaitable<void> progress(Shared& s) {
  auto ex = co_await asio::this_coro::executor;
  asio::steady_timer t(ex);
  s.ticker = &t;
  while (s.finished < s.opt.requests) {
    t.expires_after(std::chrono::seconds(1));
    co_await t.async_wait(kNoThrow);
    std::fprintf(stderr, "ferry-bench-sse: %.1fs open=%zu max_open=%zu finished=%zu errors=%zu\n",
                 std::chrono::duration<double>(Clock::now() - s.started).count(), s.open, s.max_open,
                 s.finished, s.errors);
  }
  s.ticker = nullptr;
}

int64_t percentile(std::vector<int64_t>& v, double p) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  // nearest rank
  size_t rank = static_cast<size_t>(p / 100.0 * static_cast<double>(v.size()) + 0.999999);
  rank = std::clamp<size_t>(rank, 1, v.size());
  return v[rank - 1];
}

std::string json_escape(std::string_view s) {
  std::string out;
  for (char ch : s) {
    if (ch == '"' || ch == '\\') {
      out += '\\';
      out += ch;
    } else if (static_cast<unsigned char>(ch) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", ch);
      out += buf;
    } else {
      out += ch;
    }
  }
  return out;
}

bool parse_size(const char* s, size_t& out) {
  std::string_view v = s;
  auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), out);
  return ec == std::errc() && p == v.data() + v.size();
}

int usage_error(const std::string& why) {
  std::fprintf(stderr, "ferry-bench-sse: %s\n\n%s", why.c_str(), kUsage);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  std::string target;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    auto next = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    const char* v = nullptr;
    if (arg == "--help" || arg == "-h") {
      std::fputs(kUsage, stdout);
      return 0;
    } else if (arg == "--hold") {
      opt.hold = true;
    } else if (arg == "--progress") {
      opt.progress = true;
    } else if (arg == "--target" || arg == "--path" || arg == "--model" || arg == "--concurrency" ||
               arg == "--requests" || arg == "--body-words" || arg == "--timeout-s" || arg == "--header") {
      v = next();
      if (!v) return usage_error(std::string(arg) + " needs a value");
      size_t n = 0;
      if (arg == "--target") {
        target = v;
      } else if (arg == "--path") {
        opt.path = v;
      } else if (arg == "--model") {
        opt.model = v;
      } else if (arg == "--header") {
        opt.headers.emplace_back(v);
      } else if (!parse_size(v, n)) {
        return usage_error(std::string(arg) + " needs a number, not '" + v + "'");
      } else if (arg == "--concurrency") {
        opt.concurrency = n;
      } else if (arg == "--requests") {
        opt.requests = n;
      } else if (arg == "--body-words") {
        opt.body_words = n;
      } else {
        opt.timeout_s = static_cast<long>(n);
      }
    } else {
      return usage_error("unknown argument '" + std::string(arg) + "'");
    }
  }
  if (target.empty()) return usage_error("--target HOST:PORT is required");
  if (opt.concurrency == 0 || opt.requests == 0 || opt.timeout_s == 0)
    return usage_error("--concurrency, --requests and --timeout-s must be positive");
  size_t colon = target.rfind(':');
  if (colon == std::string::npos || colon + 1 == target.size())
    return usage_error("--target must be HOST:PORT, not '" + target + "'");
  opt.host = target.substr(0, colon);
  opt.port = target.substr(colon + 1);
  std::string resolve_host = opt.host;
  if (resolve_host.size() > 2 && resolve_host.front() == '[' && resolve_host.back() == ']')
    resolve_host = resolve_host.substr(1, resolve_host.size() - 2);

  // Every connection is a file descriptor: take what the hard limit allows.
  rlimit nofile{};
  if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
    if (nofile.rlim_cur < nofile.rlim_max) {
      nofile.rlim_cur = nofile.rlim_max;
      ::setrlimit(RLIMIT_NOFILE, &nofile);
    }
    size_t conns = std::min(opt.concurrency, opt.requests);
    if (nofile.rlim_cur != RLIM_INFINITY && conns + 16 > nofile.rlim_cur)
      std::fprintf(stderr, "ferry-bench-sse: warning: %zu connections but RLIMIT_NOFILE is %llu\n", conns,
                   static_cast<unsigned long long>(nofile.rlim_cur));
  }

  asio::io_context io{1};
  Shared s(io);
  s.opt = opt;
  {
    error_code ec;
    tcp::resolver resolver(io);
    auto results = resolver.resolve(resolve_host, opt.port, ec);
    if (ec || results.empty()) {
      std::fprintf(stderr, "ferry-bench-sse: cannot resolve %s: %s\n", target.c_str(), ec.message().c_str());
      return 2;
    }
    s.endpoint = results.begin()->endpoint();
  }

  std::string content;
  for (size_t w = 1; w <= opt.body_words; ++w) content += (w > 1 ? " w" : "w") + std::to_string(w);
  std::string body = "{\"model\":\"" + json_escape(opt.model) +
                     "\",\"stream\":true,\"messages\":[{\"role\":\"user\",\"content\":\"" + content + "\"}]}";
  s.request = "POST " + opt.path + " HTTP/1.1\r\nHost: " + opt.host +
              "\r\nUser-Agent: ferry-bench-sse\r\nAccept: text/event-stream\r\n"
              "Content-Type: application/json\r\nContent-Length: " +
              std::to_string(body.size()) + "\r\n";
  for (const auto& h : opt.headers) s.request += h + "\r\n";
  s.request += "\r\n" + body;

  s.conns = std::min(opt.concurrency, opt.requests);
  s.ttfb_us.reserve(opt.requests);
  s.total_us.reserve(opt.requests);
  std::vector<std::unique_ptr<Conn>> conns;
  conns.reserve(s.conns);
  s.started = s.last_end = Clock::now();
  for (size_t i = 0; i < s.conns; ++i) {
    conns.push_back(std::make_unique<Conn>(io));
    asio::co_spawn(io, worker(s, *conns.back()), asio::detached);
  }
  if (opt.progress) asio::co_spawn(io, progress(s), asio::detached);
  io.run();

  double wall = std::chrono::duration<double>(s.last_end - s.started).count();
  int64_t ttfb50 = percentile(s.ttfb_us, 50);
  int64_t ttfb99 = percentile(s.ttfb_us, 99);
  int64_t total50 = percentile(s.total_us, 50);
  int64_t total99 = percentile(s.total_us, 99);
  std::printf(
      "{\"requests\":%zu,\"errors\":%zu,\"ttfb_p50_us\":%lld,\"ttfb_p99_us\":%lld,\"total_p50_us\":%lld,"
      "\"total_p99_us\":%lld,\"max_concurrent_open\":%zu,\"wall_s\":%.3f}\n",
      s.finished, s.errors, static_cast<long long>(ttfb50), static_cast<long long>(ttfb99),
      static_cast<long long>(total50), static_cast<long long>(total99), s.max_open, wall);
  std::fflush(stdout);
  if (s.errors) {
    std::string breakdown;
    for (size_t k = 1; k < static_cast<size_t>(Outcome::kCount); ++k)
      if (s.by_outcome[k])
        breakdown += " " + std::string(kOutcomeNames[k]) + "=" + std::to_string(s.by_outcome[k]);
    for (size_t d = 1; d < 6; ++d)
      if (s.status_counts[d])
        breakdown += " status_" + std::to_string(d) + "xx=" + std::to_string(s.status_counts[d]);
    std::fprintf(stderr, "ferry-bench-sse: errors:%s\n", breakdown.c_str());
    return 1;
  }
  return 0;
}
