// Hostile but valid client input: one request must never take ferryd down,
// stall the other requests on its worker, or leak a counter. Each case was a
// finding of an attack on the tree; each answer is a precise 4xx.
#include <regex>

#include "tests/integration/common.h"
#include "tests/support/raw_client.h"

namespace ferry::test {
namespace {

// A gauge's value in /metrics text.
double gauge(const std::string& address, const std::string& name) {
  auto m = http_get(address, "/metrics");
  std::smatch match;
  std::regex re("(^|\n)" + name + " ([0-9.e+-]+)");
  if (!std::regex_search(m.body, match, re)) return -1;
  return std::stod(match[2]);
}

class HostileJson : public testing::Test {
 protected:
  void SetUp() override {
    // One worker: a request that stalled it would stall /health too.
    f_ = Ferryd::start("[server]\nthreads = 1\n\n" + mock_pipeline());
  }
  void TearDown() override {
    expect_healthy(f_->address());
    // Nothing leaked: the /metrics request itself is the only one counted,
    // on the only open connection.
    EXPECT_EQ(gauge(f_->address(), "ferry_active_requests"), 1);
    EXPECT_TRUE(eventually([&] { return gauge(f_->address(), "ferry_open_connections") == 1; }));
    EXPECT_EQ(f_->stop(), 0) << f_->output();
  }
  HttpResponse chat(const std::string& body) {
    return http_post(f_->address(), "/v1/chat/completions", body);
  }
  std::string code(const HttpResponse& r) { return r.json()["error"].value("code", ""); }

  std::unique_ptr<Ferryd> f_;
};

TEST_F(HostileJson, DeepNestingIsRefusedAtTheLimitNotFollowedDownTheStack) {
  // 400,000 levels in an unread field of a streaming request: 800 KB, under
  // the body limit. It overflowed the worker's stack when the host copied the
  // tree to add stream_options.
  std::string deep(400'000, '[');
  deep += std::string(400'000, ']');
  auto r = chat(chat_body("m", "hi", "\"stream\":true,\"metadata\":{\"x\":" + deep + "}"));
  EXPECT_EQ(r.status, 400) << r.body.substr(0, 300);
  EXPECT_EQ(code(r), "limit_exceeded");
  EXPECT_NE(error_message(r).find("nesting deeper than 128 at /metadata/x/0/0/0/0/..."), std::string::npos)
      << r.body;
  EXPECT_NE(error_message(r).find("[limits] max_json_depth"), std::string::npos) << r.body;

  // Within the limit the same shape is served.
  std::string fine = std::string(100, '[') + std::string(100, ']');
  auto ok = chat(chat_body("m", "hi", "\"metadata\":{\"x\":" + fine + "}"));
  EXPECT_EQ(ok.status, 200) << ok.body;
}

TEST_F(HostileJson, AHundredThousandKeysAreRefusedWithoutStallingTheWorker) {
  std::string keys;
  for (int i = 0; i < 100'000; ++i) keys += (i ? ",\"k" : "\"k") + std::to_string(i) + "\":1";
  std::string body = chat_body("m", "hi", "\"metadata\":{" + keys + "}");
  ASSERT_GT(body.size(), 1'000'000u);
  auto r = chat(body);
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_NE(error_message(r).find("an object with more keys than 10000 at /metadata"), std::string::npos)
      << r.body;
  EXPECT_NE(error_message(r).find("[limits] max_object_keys"), std::string::npos) << r.body;
}

TEST_F(HostileJson, DuplicateKeysAreRefusedSoNoTwoReadersDisagree) {
  auto r = chat(R"({"model":"m","messages":[{"role":"user","content":"hi"}],"model":"other"})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(code(r), "duplicate_key");
  EXPECT_NE(error_message(r).find("duplicate key 'model'"), std::string::npos) << r.body;
}

TEST_F(HostileJson, WrongTypesInFieldsTheHostReadsGetAPrecise400) {
  const std::pair<std::string, std::string> cases[] = {
      {R"("stream":true,"stream_options":{"include_usage":"yes"})", "'stream_options.include_usage' must be"},
      {R"("stream_options":"yes")", "'stream_options' must be an object"},
      {R"("max_tokens":"100")", "'max_tokens' must be an integer"},
      {R"("max_tokens":-1)", "'max_tokens' must be an integer of at least 0"},
      {R"("n":0)", "'n' must be an integer of at least 1"},
      {R"("tools":{"a":1})", "'tools' must be an array"},
  };
  for (const auto& [extra, message] : cases) {
    auto r = chat(chat_body("m", "hi", extra));
    EXPECT_EQ(r.status, 400) << extra << ": " << r.body;
    EXPECT_NE(error_message(r).find(message), std::string::npos) << extra << ": " << r.body;
  }
  auto bad_message = chat(R"({"model":"m","messages":["hi"]})");
  EXPECT_EQ(bad_message.status, 400);
  EXPECT_NE(error_message(bad_message).find("messages[0] must be an object with a string 'role'"),
            std::string::npos);
}

TEST_F(HostileJson, NumbersADoubleCannotHoldAreRefused) {
  auto r = chat(chat_body("m", "hi", R"("temperature":1e400)"));
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(code(r), "invalid_json");
  EXPECT_NE(error_message(r).find("number overflow"), std::string::npos) << r.body;
}

TEST_F(HostileJson, BytesThatAreNotUtf8GetA400AndALogLineThatQuotesThem) {
  auto r = chat(std::string(R"({"model":"m","messages":[{"role":"user","content":"bad )") + "\xff\xfe" +
                R"("}]})");
  EXPECT_EQ(r.status, 400) << r.body;
  EXPECT_EQ(code(r), "invalid_json");
  // The answer and the access log stay valid UTF-8: the bytes are escaped.
  EXPECT_NE(error_message(r).find("\\xff"), std::string::npos) << r.body;
  auto line = f_->log_line("status=400");
  ASSERT_TRUE(line) << f_->output();
  EXPECT_NE(line->find("invalid JSON"), std::string::npos) << *line;

  // A NUL byte, and what follows it, are not passed on.
  auto nul =
      chat(std::string(R"({"model":"m","messages":[{"role":"user","content":"hi"}]})") + '\0' + "garbage");
  EXPECT_EQ(nul.status, 400) << nul.body;
  EXPECT_NE(error_message(nul).find("a NUL byte"), std::string::npos) << nul.body;
}

TEST_F(HostileJson, AHeaderValueThatIsNotUtf8IsAnsweredAndLogged) {
  auto r =
      http_post(f_->address(), "/v1/chat/completions", chat_body("m", "hi"), {{"x-ferry-provider", "\xff"}});
  EXPECT_EQ(r.status, 404) << r.body;
  EXPECT_NE(error_message(r).find("x-ferry-provider"), std::string::npos) << r.body;
  auto line = f_->log_line("status=404");
  ASSERT_TRUE(line) << f_->output();
}

class ShapeLimits : public testing::Test {
 protected:
  void SetUp() override {
    f_ = Ferryd::start("[limits]\nmax_messages = 3\nmax_tools = 2\nmax_images = 1\n\n" + mock_pipeline());
  }
  HttpResponse chat(const std::string& body) {
    return http_post(f_->address(), "/v1/chat/completions", body);
  }
  std::unique_ptr<Ferryd> f_;
};

TEST_F(ShapeLimits, MessagesToolsAndImagesPastTheirLimitsAreRefusedByName) {
  std::string four = R"({"model":"m","messages":[)";
  for (int i = 0; i < 4; ++i) four += std::string(i ? "," : "") + R"({"role":"user","content":"x"})";
  four += "]}";
  auto r = chat(four);
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r).find("more messages than the limit of 3 ([limits] max_messages)"),
            std::string::npos)
      << r.body;

  std::string tool = R"({"type":"function","function":{"name":"f","parameters":{}}})";
  r = chat(chat_body("m", "hi", "\"tools\":[" + tool + "," + tool + "," + tool + "]"));
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r).find("([limits] max_tools)"), std::string::npos) << r.body;

  std::string image = R"({"type":"image_url","image_url":{"url":"https://example.com/a.png"}})";
  r = chat(R"({"model":"m","messages":[{"role":"user","content":[)" + image + "," + image + "]}]}");
  EXPECT_EQ(r.status, 400);
  EXPECT_NE(error_message(r).find("([limits] max_images)"), std::string::npos) << r.body;

  r = chat(R"({"model":"m","messages":[{"role":"user","content":[)" + image + "]}]}");
  EXPECT_EQ(r.status, 200) << r.body;
}

class HostileHttp : public testing::Test {
 protected:
  void SetUp() override {
    f_ = Ferryd::start(
        "[server]\nthreads = 1\nheader_timeout_ms = 400\n\n[limits]\nmax_header_count = 20\n\n" +
        mock_pipeline());
  }
  void TearDown() override {
    expect_healthy(f_->address());
    EXPECT_EQ(f_->stop(), 0) << f_->output();
  }
  std::unique_ptr<Ferryd> f_;
};

std::string post_head(const std::string& version, const std::string& body, const std::string& extra = "") {
  return "POST /v1/chat/completions " + version + "\r\nHost: x\r\nContent-Type: application/json\r\n" +
         extra + "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n";
}

TEST_F(HostileHttp, AnHttp10ClientGetsAStreamItCanRead) {
  // HTTP/1.0 has no chunked encoding: the stream's end is the connection's.
  RawClient c(f_->address());
  std::string body = chat_body("m", "one two three", "\"stream\":true");
  ASSERT_TRUE(c.send(post_head("HTTP/1.0", body) + body));
  std::string reply = c.read_until_close();
  EXPECT_TRUE(c.closed());
  EXPECT_EQ(reply.find("Transfer-Encoding"), std::string::npos) << reply;
  EXPECT_NE(reply.find("Connection: close"), std::string::npos) << reply;
  EXPECT_NE(reply.find("\r\n\r\ndata: {"), std::string::npos) << reply;
  EXPECT_TRUE(reply.ends_with("data: [DONE]\n\n")) << reply;
}

TEST_F(HostileHttp, Expect100ContinueIsAnsweredBeforeTheBody) {
  RawClient c(f_->address());
  std::string body = chat_body("m", "hi");
  ASSERT_TRUE(c.send(post_head("HTTP/1.1", body, "Expect: 100-continue\r\n")));
  std::string interim = c.read_until("\r\n\r\n");
  EXPECT_EQ(interim, "HTTP/1.1 100 Continue\r\n\r\n");
  ASSERT_TRUE(c.send(body));
  std::string reply = c.read_until("mock reply: hi");
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 200 OK")) << reply;
}

TEST_F(HostileHttp, TooManyHeaderFieldsGet431) {
  std::string many;
  for (int i = 0; i < 30; ++i) many += "x-h" + std::to_string(i) + ": v\r\n";
  RawClient c(f_->address());
  std::string body = chat_body("m", "hi");
  ASSERT_TRUE(c.send(post_head("HTTP/1.1", body, many) + body));
  std::string reply = c.read_until_close();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 431")) << reply;
  EXPECT_NE(reply.find("max_header_count"), std::string::npos) << reply;
}

TEST_F(HostileHttp, AHeadThatNeverEndsIsClosedAfterTheHeaderTimeout) {
  RawClient slow(f_->address());
  ASSERT_TRUE(slow.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n"));
  // Nothing more: ferryd closes it (header_timeout_ms = 400), long before the
  // 60 s idle timeout and the 10 s this read waits.
  std::string rest = slow.read_until_close(std::chrono::seconds(10));
  EXPECT_TRUE(slow.closed());
  EXPECT_EQ(rest, "");
}

// What held up in the attack, kept: a request whose length two headers
// disagree on is refused, not split into two requests (smuggling).
TEST_F(HostileHttp, ARequestWithTwoLengthsIsRefusedNotSmuggled) {
  std::string body = chat_body("m", "hi");
  std::string smuggled = "GET /health HTTP/1.1\r\nHost: x\r\n\r\n";
  for (const std::string& lengths :
       {"Content-Length: " + std::to_string(body.size()) + "\r\nTransfer-Encoding: chunked\r\n",
        "Content-Length: " + std::to_string(body.size()) + "\r\nContent-Length: 5\r\n"}) {
    RawClient c(f_->address());
    ASSERT_TRUE(
        c.send("POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + lengths + "\r\n" + body + smuggled));
    std::string reply = c.read_until_close();
    EXPECT_TRUE(reply.starts_with("HTTP/1.1 400")) << lengths << ": " << reply;
    EXPECT_EQ(reply.find("\"status\":\"ok\""), std::string::npos)
        << "the smuggled /health was answered: " << reply;
  }
}

class Connections : public testing::Test {};

TEST_F(Connections, IdleConnectionsPastTheLimitAreShedOldestFirstAndRequestsStillServed) {
  auto f = Ferryd::start("[server]\nthreads = 1\n\n[limits]\nmax_connections = 20\n\n" + mock_pipeline());
  // 60 connections that never send a byte: three times the limit.
  std::vector<std::unique_ptr<RawClient>> idle;
  for (int i = 0; i < 60; ++i) idle.push_back(std::make_unique<RawClient>(f->address()));
  // A real client still gets its answer at once.
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "hi"));
  EXPECT_EQ(r.status, 200) << r.body << r.error;
  // The first ones went first: the oldest idle connection is shed.
  EXPECT_EQ(idle.front()->read_until_close(std::chrono::seconds(5)), "");
  EXPECT_TRUE(idle.front()->closed());
  auto metrics = http_get(f->address(), "/metrics");
  EXPECT_NE(metrics.body.find("ferry_connections_shed_total"), std::string::npos) << metrics.body;
  EXPECT_LE(gauge(f->address(), "ferry_open_connections"), 20);
  EXPECT_EQ(f->stop(), 0) << f->output();
}

TEST_F(Connections, WhenEveryConnectionIsBusyANewOneGetsA503NotASilentHang) {
  MockUpstream up;
  auto f =
      Ferryd::start("[server]\nthreads = 1\n\n[limits]\nmax_connections = 2\n\n" + openai_provider("up", up) +
                    "[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"up\"]\n");
  // Two requests that hang upstream keep both connections busy.
  std::vector<std::unique_ptr<RawClient>> busy;
  std::string body = chat_body("m", "wait [[fault:delay_ms=3000]]");
  for (int i = 0; i < 2; ++i) {
    busy.push_back(std::make_unique<RawClient>(f->address()));
    ASSERT_TRUE(busy.back()->send(post_head("HTTP/1.1", body) + body));
  }
  ASSERT_TRUE(eventually([&] { return up.requests() == 2; }));
  RawClient third(f->address());
  std::string reply = third.read_until_close();
  EXPECT_TRUE(reply.starts_with("HTTP/1.1 503")) << reply;
  EXPECT_NE(reply.find("too_many_connections"), std::string::npos) << reply;
  // The busy ones are answered in full.
  for (auto& c : busy) EXPECT_NE(c->read_until("mock reply: wait").find("200 OK"), std::string::npos);
}

}  // namespace
}  // namespace ferry::test
