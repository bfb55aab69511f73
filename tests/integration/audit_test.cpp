// The audit middleware through the real ferryd: one JSON line per request
// (streamed ones included), bodies with secrets redacted, and rotation by size.
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "tests/integration/common.h"

namespace ferry::test {
namespace {

std::string audited(const std::string& path, const std::string& options) {
  return "[log]\naccess_log = false\n\n[providers.mock]\nplugin = \"mock\"\n\n[middleware.audit]\nplugin = "
         "\"audit\"\n"
         "path = \"" +
         path + "\"\n" + options +
         "\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"mock\"]\nmiddleware = [\"audit\"]\n";
}

// Lines keyed by request id: requests on different workers finish in any order.
std::map<std::string, json::Value> by_id(const std::vector<json::Value>& lines) {
  std::map<std::string, json::Value> out;
  for (const auto& l : lines) out[l.value("request_id", "")] = l;
  return out;
}

std::vector<json::Value> lines_of(const std::string& path) {
  std::vector<json::Value> out;
  std::ifstream in(path);
  // A line being written may be read half-way: it is skipped until complete.
  for (std::string line; std::getline(in, line);)
    if (auto v = json::Value::parse(line, nullptr, false); v.is_object()) out.push_back(std::move(v));
  return out;
}

TEST(Audit, WritesOneLinePerRequestStreamedOrNot) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto f = Ferryd::start(audited(path, ""));
  http_post(f->address(), "/v1/chat/completions", chat_body("m", "first"), {{"x-request-id", "audit-1"}});
  http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "second", R"("stream":true)"),
                {{"x-request-id", "audit-2"}});
  ASSERT_TRUE(eventually([&] { return lines_of(path).size() == 2; }));
  auto lines = by_id(lines_of(path));
  ASSERT_TRUE(lines.count("audit-1") && lines.count("audit-2"));
  EXPECT_EQ(lines["audit-1"]["status"], 200);
  EXPECT_EQ(lines["audit-1"]["stream"], false);
  EXPECT_GT(lines["audit-1"]["completion_tokens"].get<int>(), 0);
  EXPECT_EQ(lines["audit-2"]["stream"], true);
  EXPECT_FALSE(lines["audit-1"].contains("request")) << "bodies are off by default";
}

TEST(Audit, KeepsBodiesWithSecretsRedacted) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto f = Ferryd::start(audited(path, "bodies = true\n"));
  http_post(f->address(), "/v1/chat/completions",
            chat_body("m", "my key is sk-live0123456789abcdefXYZ", R"("metadata":{"password":"hunter2"})"),
            {{"x-request-id", "plain"}});
  http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "stream me", R"("stream":true)"),
                {{"x-request-id", "streamed"}});
  ASSERT_TRUE(eventually([&] { return lines_of(path).size() == 2; }));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("hunter2"), std::string::npos) << text;
  EXPECT_EQ(text.find("0123456789abcdef"), std::string::npos) << text;
  auto lines = by_id(lines_of(path));
  EXPECT_EQ(lines["plain"]["request"]["metadata"]["password"], "[REDACTED]");
  EXPECT_EQ(lines["plain"]["request"]["messages"][0]["content"], "my key is sk-[REDACTED]");
  EXPECT_EQ(lines["plain"]["response"]["object"], "chat.completion");
  EXPECT_EQ(lines["streamed"]["response_text"], "Ferry mock reply: stream me");
}

// Bodies hold prompts and answers: with encryption_key_env they are sealed
// (AES-256-GCM, bound to the line's request id) and only `ferry audit
// decrypt` with the key reads them; the rest of the line stays searchable.
TEST(Audit, SealsBodiesAtRestAndTheCliOpensThem) {
  const std::string key = "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff";
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto f = Ferryd::start(audited(path, "bodies = true\nencryption_key_env = \"FERRY_TEST_AUDIT_KEY\"\n"), {},
                         {"FERRY_TEST_AUDIT_KEY=" + key});
  http_post(f->address(), "/v1/chat/completions", chat_body("m", "my diagnosis is private"),
            {{"x-request-id", "sealed"}});
  http_post_sse(f->address(), "/v1/chat/completions", chat_body("m", "stream me", R"("stream":true)"),
                {{"x-request-id", "sealed-stream"}});
  ASSERT_TRUE(eventually([&] { return lines_of(path).size() == 2; }));
  std::ifstream in(path);
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.find("diagnosis"), std::string::npos) << text;
  EXPECT_EQ(text.find("stream me"), std::string::npos) << text;
  auto lines = by_id(lines_of(path));
  EXPECT_TRUE(lines["sealed"]["request"].get<std::string>().starts_with("fe1:")) << lines["sealed"];
  EXPECT_EQ(lines["sealed"]["status"], 200);

  auto opened = run({FERRY_TEST_CLI, "audit", "decrypt", path}, {"FERRY_AUDIT_KEY=" + key});
  ASSERT_EQ(opened.status, 0) << opened.output;
  std::map<std::string, json::Value> plain;
  std::istringstream out(opened.output);
  for (std::string line; std::getline(out, line);)
    if (auto v = json::Value::parse(line, nullptr, false); v.is_object())
      plain[v.value("request_id", "")] = v;
  EXPECT_EQ(plain["sealed"]["request"]["messages"][0]["content"], "my diagnosis is private") << opened.output;
  EXPECT_EQ(plain["sealed"]["response"]["object"], "chat.completion");
  EXPECT_EQ(plain["sealed-stream"]["response_text"], "Ferry mock reply: stream me");
  // The wrong key opens nothing.
  auto wrong = run({FERRY_TEST_CLI, "audit", "decrypt", path},
                   {"FERRY_AUDIT_KEY=ffeeddccbbaa99887766554433221100ffeeddccbbaa99887766554433221100"});
  EXPECT_EQ(wrong.status, 1);
  EXPECT_NE(wrong.output.find("key id unknown"), std::string::npos) << wrong.output;
}

TEST(Audit, RotatesBySizeAndKeepsTheConfiguredNumberOfFiles) {
  TempDir dir;
  std::string path = dir.path() + "/audit.jsonl";
  auto f = Ferryd::start(audited(path, "max_bytes = 4096\nkeep = 2\n"));
  for (int i = 0; i < 60; ++i) http_post(f->address(), "/v1/chat/completions", chat_body("m", "hello"));
  ASSERT_TRUE(eventually([&] { return std::filesystem::exists(path + ".2"); }));
  EXPECT_FALSE(std::filesystem::exists(path + ".3"));
  for (const auto& p : {path, path + ".1", path + ".2"}) {
    EXPECT_LE(std::filesystem::file_size(p), 4096u) << p;
    for (const auto& line : lines_of(p)) EXPECT_TRUE(line.contains("request_id")) << p;
  }
}

}  // namespace
}  // namespace ferry::test
