// The middleware chain on its own: fake middleware vtables whose hooks log
// what ran and return what each test scripts.
#include "core/pipeline/middleware_chain.h"

#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>

namespace ferry::pipeline {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using Kind = HookOutcome::Kind;

// Per middleware: its name and what its hooks return ("on_request" -> status).
struct Fake {
  std::string name;
  std::map<std::string, ferry_status> returns;
  ferry_status filter_new = FERRY_OK;
  bool respond = false;       // on_request calls "ctx_respond" (sets respond_status) first
  bool break_doc = false;     // on_response leaves an array behind
  bool resume_later = false;  // a PAUSE is resumed with CONTINUE from the event loop
};

// The running test's log and context (the hooks are C functions).
std::vector<std::string>* g_log = nullptr;
RequestContext* g_ctx = nullptr;
asio::io_context* g_io = nullptr;

Fake& fake(ferry_instance* i) { return *reinterpret_cast<Fake*>(i); }

ferry_status hook(ferry_instance* i, const char* name) {
  Fake& f = fake(i);
  g_log->push_back(f.name + ":" + name);
  auto it = f.returns.find(name);
  ferry_status st = it == f.returns.end() ? FERRY_CONTINUE : it->second;
  if (st == FERRY_PAUSE && f.resume_later) asio::post(*g_io, [] { g_ctx->async->resume(FERRY_CONTINUE); });
  return st;
}

ferry_middleware_vtable vtable(bool with_chunk = true) {
  ferry_middleware_vtable vt{};
  vt.struct_size = sizeof vt;
  vt.filter_new = [](ferry_instance* i, ferry_ctx*, ferry_filter** out) {
    g_log->push_back(fake(i).name + ":filter_new");
    *out = reinterpret_cast<ferry_filter*>(i);
    return fake(i).filter_new;
  };
  vt.filter_free = [](ferry_instance* i, ferry_filter*) { g_log->push_back(fake(i).name + ":filter_free"); };
  vt.on_request = [](ferry_instance* i, ferry_filter*, ferry_ctx*, ferry_json*) {
    if (fake(i).respond) g_ctx->respond_status = 200;
    return hook(i, "on_request");
  };
  vt.on_attempt = [](ferry_instance* i, ferry_filter*, ferry_ctx*, ferry_view) {
    return hook(i, "on_attempt");
  };
  vt.on_response = [](ferry_instance* i, ferry_filter*, ferry_ctx*, ferry_json* doc) {
    if (fake(i).break_doc) *reinterpret_cast<json::Doc*>(doc) = json::Doc::from_text("[1]");
    return hook(i, "on_response");
  };
  if (with_chunk)
    vt.on_chunk = [](ferry_instance* i, ferry_filter*, ferry_ctx*, ferry_json*) {
      return hook(i, "on_chunk");
    };
  vt.on_complete = [](ferry_instance* i, ferry_filter*, ferry_ctx*, const ferry_request_summary*) {
    g_log->push_back(fake(i).name + ":on_complete");
  };
  return vt;
}

class MiddlewareChainTest : public ::testing::Test {
 protected:
  MiddlewareChainTest() : ctx(io.get_executor(), "req-1") {
    g_log = &log;
    g_ctx = &ctx;
    g_io = &io;
    ctx.request = json::Doc::from_text(R"({"model":"m","messages":[]})");
  }
  ~MiddlewareChainTest() override {
    chain.reset();  // frees filters while the fakes still exist
    g_log = nullptr;
    g_ctx = nullptr;
    g_io = nullptr;
  }
  Fake& add(const std::string& name, bool with_chunk = true) {
    fakes.push_back(std::make_unique<Fake>(Fake{name, {}}));
    auto m = std::make_unique<Middleware>();
    m->name = name;
    m->plugin = std::make_unique<Instance<ferry_middleware_vtable>>(
        nullptr, vtable(with_chunk), reinterpret_cast<ferry_instance*>(fakes.back().get()), nullptr);
    middleware.push_back(std::move(m));
    return *fakes.back();
  }
  std::vector<const Middleware*> list() const {
    std::vector<const Middleware*> out;
    for (const auto& m : middleware) out.push_back(m.get());
    return out;
  }
  // Runs one awaitable to its end on the test's io_context.
  HookOutcome drive(asio::awaitable<HookOutcome> work) {
    std::optional<HookOutcome> out;
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          HookOutcome r = co_await std::move(work);
          out = std::move(r);
        },
        asio::detached);
    io.run();
    io.restart();
    EXPECT_TRUE(out.has_value());
    return out.value_or(HookOutcome{Kind::kFailed, nullptr, "did not finish"});
  }
  HookOutcome request() { return drive(chain->on_request(list())); }
  std::vector<std::string> expect(std::initializer_list<const char*> lines) {
    return std::vector<std::string>(lines.begin(), lines.end());
  }

  asio::io_context io;
  RequestContext ctx;
  std::vector<std::string> log;
  std::vector<std::unique_ptr<Fake>> fakes;
  std::vector<std::unique_ptr<Middleware>> middleware;
  std::unique_ptr<MiddlewareChain> chain = std::make_unique<MiddlewareChain>(ctx, 50ms);
};

TEST_F(MiddlewareChainTest, DrivesHooksInOrderThereAndInReverseOnTheWayBack) {
  add("a");
  add("b");
  EXPECT_EQ(request().kind, Kind::kContinue);
  EXPECT_EQ(drive(chain->on_attempt("p")).kind, Kind::kContinue);
  json::Doc response = json::Doc::from_text(R"({"choices":[]})");
  EXPECT_EQ(drive(chain->on_response(response)).kind, Kind::kContinue);
  json::Doc chunk = json::Doc::from_text(R"({"choices":[]})");
  EXPECT_EQ(drive(chain->on_chunk(chunk)).kind, Kind::kContinue);
  chain->on_complete(ferry_request_summary{});
  EXPECT_EQ(log, expect({"a:filter_new", "a:on_request", "b:filter_new", "b:on_request", "a:on_attempt",
                         "b:on_attempt", "b:on_response", "a:on_response", "b:on_chunk", "a:on_chunk",
                         "b:on_complete", "a:on_complete", "a:filter_free", "b:filter_free"}));
}

TEST_F(MiddlewareChainTest, APauseWaitsForTheResume) {
  add("a");
  Fake& b = add("b");
  add("c");
  b.returns["on_request"] = FERRY_PAUSE;
  b.resume_later = true;
  EXPECT_EQ(request().kind, Kind::kContinue);
  EXPECT_EQ(log, expect({"a:filter_new", "a:on_request", "b:filter_new", "b:on_request", "c:filter_new",
                         "c:on_request"}));
}

TEST_F(MiddlewareChainTest, APauseWithoutResumeTimesOut) {
  add("a");
  Fake& b = add("b");
  add("c");
  b.returns["on_request"] = FERRY_PAUSE;
  HookOutcome r = request();
  EXPECT_EQ(r.kind, Kind::kTimedOut);
  ASSERT_NE(r.middleware, nullptr);
  EXPECT_EQ(r.middleware->name, "b");
  EXPECT_EQ(r.message, "middleware 'b' paused in on_request and did not resume within 50 ms");
  EXPECT_EQ(r.http_status(), 504);
  // The request stops there: c is never made.
  EXPECT_EQ(log, expect({"a:filter_new", "a:on_request", "b:filter_new", "b:on_request"}));
}

TEST_F(MiddlewareChainTest, RespondStopsTheRequestOnlyWithAnAnswer) {
  add("a");
  Fake& b = add("b");
  add("c");
  b.returns["on_request"] = FERRY_RESPOND;
  b.respond = true;
  HookOutcome r = request();
  EXPECT_EQ(r.kind, Kind::kRespond);
  EXPECT_EQ(r.middleware->name, "b");
  chain->on_complete(ferry_request_summary{});
  EXPECT_EQ(log, expect({"a:filter_new", "a:on_request", "b:filter_new", "b:on_request", "b:on_complete",
                         "a:on_complete", "a:filter_free", "b:filter_free"}));
}

TEST_F(MiddlewareChainTest, RespondWithoutAnAnswerIsAFailure) {
  Fake& a = add("a");
  a.returns["on_request"] = FERRY_RESPOND;
  HookOutcome r = request();
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_EQ(r.message, "middleware 'a' failed in on_request (status 1)");
  EXPECT_EQ(r.http_status(), 500);
}

TEST_F(MiddlewareChainTest, SkipIsOnlyForOnAttempt) {
  add("a");
  Fake& b = add("b");
  add("c");
  b.returns["on_attempt"] = FERRY_SKIP;
  ASSERT_EQ(request().kind, Kind::kContinue);
  HookOutcome r = drive(chain->on_attempt("p"));
  EXPECT_EQ(r.kind, Kind::kSkip);
  EXPECT_EQ(r.middleware->name, "b");
  EXPECT_EQ(log.back(), "b:on_attempt");  // c is not asked

  b.returns["on_response"] = FERRY_SKIP;
  json::Doc response = json::Doc::from_text(R"({"choices":[]})");
  HookOutcome rr = drive(chain->on_response(response));
  EXPECT_EQ(rr.kind, Kind::kFailed);
  EXPECT_EQ(rr.message, "middleware 'b' failed in on_response (status 3)");
}

TEST_F(MiddlewareChainTest, AResponseLeftWithoutAnObjectFails) {
  Fake& a = add("a");
  a.break_doc = true;
  ASSERT_EQ(request().kind, Kind::kContinue);
  json::Doc response = json::Doc::from_text(R"({"choices":[]})");
  HookOutcome r = drive(chain->on_response(response));
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_EQ(r.message, "middleware 'a' failed in on_response (status 0)");
}

TEST_F(MiddlewareChainTest, AFilterThatFailsToStartStopsTheChain) {
  add("a");
  Fake& b = add("b");
  add("c");
  b.filter_new = FERRY_ERR_INTERNAL;
  HookOutcome r = request();
  EXPECT_EQ(r.kind, Kind::kFailed);
  EXPECT_EQ(r.message, "middleware 'b' failed to start (status " + std::to_string(FERRY_ERR_INTERNAL) + ")");
  chain->on_complete(ferry_request_summary{});
  // Only the filter that was made hears the end.
  EXPECT_EQ(log, expect({"a:filter_new", "a:on_request", "b:filter_new", "a:on_complete", "a:filter_free"}));
}

TEST_F(MiddlewareChainTest, KnowsWhetherAnyoneLooksAtChunks) {
  add("a", /*with_chunk=*/false);
  ASSERT_EQ(request().kind, Kind::kContinue);
  EXPECT_FALSE(chain->has_chunk_hooks());
  EXPECT_TRUE(chain->has_attempt_hooks());

  auto other = std::make_unique<MiddlewareChain>(ctx, 50ms);
  add("b");
  chain = std::move(other);
  ASSERT_EQ(request().kind, Kind::kContinue);
  EXPECT_TRUE(chain->has_chunk_hooks());
}

}  // namespace
}  // namespace ferry::pipeline
