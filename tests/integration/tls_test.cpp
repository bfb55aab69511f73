// Upstream HTTPS: ferryd verifies certificates and host names, and a provider
// can trust a private CA with ca_file. A real TLS terminator (socat) sits in
// front of the mock upstream.
#include "tests/integration/common.h"

namespace ferry::test {
namespace {

class Tls : public testing::Test {
 protected:
  // A self-signed certificate valid for `san` (e.g. "IP:127.0.0.1").
  std::string make_cert(const std::string& name, const std::string& san) {
    auto cert = dir_.path() + "/" + name + ".pem";
    auto key = dir_.path() + "/" + name + ".key";
    auto r = run({"openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj",
                  "/CN=ferry-test", "-addext", "subjectAltName=" + san, "-keyout", key, "-out", cert});
    EXPECT_EQ(r.status, 0) << r.output;
    return cert;
  }

  // Starts socat terminating TLS with cert/key and forwarding to the mock.
  std::string start_tls(const std::string& cert) {
    auto key = cert.substr(0, cert.size() - 4) + ".key";
    socat_ = Process::start(
        {"socat", "-d", "-d",
         "OPENSSL-LISTEN:0,bind=127.0.0.1,reuseaddr,fork,verify=0,cert=" + cert + ",key=" + key,
         "TCP:" + up_.address()});
    auto line = socat_->wait_for_line("listening on AF=2 ");
    if (!line) {
      ADD_FAILURE() << "socat did not start: " << socat_->output();
      return {};
    }
    return "127.0.0.1:" + line->substr(line->rfind(':') + 1);
  }

  std::unique_ptr<Ferryd> ferryd(const std::string& address, const std::string& extra = "") {
    return Ferryd::start("[providers.secure]\nplugin = \"openai\"\nbase_url = \"https://" + address +
                         "/v1\"\n" + extra +
                         "\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"secure\"]\n");
  }

  TempDir dir_;
  MockUpstream up_;
  std::unique_ptr<Process> socat_;
};

TEST_F(Tls, TrustsAPrivateCaGivenWithCaFile) {
  auto cert = make_cert("good", "IP:127.0.0.1");
  auto f = ferryd(start_tls(cert), "ca_file = \"" + cert + "\"");
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "over tls"));
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.json()["choices"][0]["message"]["content"], "mock reply: over tls");
  auto s = http_post_sse(f->address(), "/v1/chat/completions",
                         chat_body("m", "streamed over tls", R"("stream":true)"));
  EXPECT_EQ(s.content(), "mock reply: streamed over tls");
}

TEST_F(Tls, RefusesACertificateItDoesNotTrust) {
  auto cert = make_cert("untrusted", "IP:127.0.0.1");
  auto f = ferryd(start_tls(cert));
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(error_message(r).find("certificate verify failed"), std::string::npos) << r.body;
  EXPECT_EQ(up_.requests(), 0);
}

TEST_F(Tls, RefusesACertificateForAnotherHost) {
  auto cert = make_cert("other-host", "DNS:api.example.invalid");
  auto f = ferryd(start_tls(cert), "ca_file = \"" + cert + "\"");
  auto r = http_post(f->address(), "/v1/chat/completions", chat_body("m", "x"));
  EXPECT_EQ(r.status, 502) << r.body;
  EXPECT_NE(error_message(r).find("TLS handshake"), std::string::npos) << r.body;
  EXPECT_EQ(up_.requests(), 0);
}

TEST_F(Tls, RejectsAMissingCaFileAtStartup) {
  auto r = ferryd_refusing(
      "[providers.secure]\nplugin = \"openai\"\nbase_url = \"https://127.0.0.1:1/v1\"\nca_file = "
      "\"/nonexistent.pem\"\n"
      "\n[pipelines.default]\nmodels = [\"m\"]\nproviders = [\"secure\"]\n");
  EXPECT_EQ(r.status, 2) << r.output;
  EXPECT_NE(r.output.find("ferry.toml:4:11: ca_file in [providers.secure]: no such file /nonexistent.pem"),
            std::string::npos)
      << r.output;
}

}  // namespace
}  // namespace ferry::test
