#include "tests/support/fixtures.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "tests/support/http.h"

namespace ferry::test {

TempDir::TempDir() {
  std::string tmpl = (std::filesystem::temp_directory_path() / "ferry-test-XXXXXX").string();
  if (!::mkdtemp(tmpl.data())) throw std::runtime_error("mkdtemp failed");
  path_ = tmpl;
}

TempDir::~TempDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::write(const std::string& name, const std::string& content) const {
  std::string p = path_ + "/" + name;
  std::ofstream(p, std::ios::binary) << content;
  return p;
}

std::string test_plugin_dir() { return FERRY_TEST_PLUGIN_DIR; }
std::string source_dir() { return FERRY_TEST_SOURCE_DIR; }

std::string chat_body(const std::string& model, const std::string& text, const std::string& extra) {
  json::Value body = {{"model", model},
                      {"messages", json::Value::array({{{"role", "user"}, {"content", text}}})}};
  std::string out = body.dump();
  if (!extra.empty()) out.insert(out.size() - 1, "," + extra);
  return out;
}

MockUpstream::MockUpstream(const std::vector<std::string>& args) {
  std::vector<std::string> argv{FERRY_TEST_MOCK_UPSTREAM, "--listen", "127.0.0.1:0", "--threads", "1"};
  argv.insert(argv.end(), args.begin(), args.end());
  process_ = Process::start(argv);
  auto line = process_->wait_for_line("listening ");
  if (!line) throw std::runtime_error("mock upstream did not start: " + process_->output());
  address_ = line->substr(line->find("listening ") + 10);
}

json::Value MockUpstream::stats() const {
  auto r = http_get(address_, "/_mock/stats");
  return json::Value::parse(r.body);
}

void MockUpstream::set_faults(const std::string& json) const {
  auto r = http_post(address_, "/_mock/faults", json);
  if (r.status != 204) throw std::runtime_error("mock upstream refused faults " + json + ": " + r.body);
}

void MockUpstream::reset() const { http_post(address_, "/_mock/reset", ""); }

int MockUpstream::requests() const { return stats().value("requests", -1); }

void MockUpstream::kill() {
  process_->signal(SIGKILL);
  process_->wait_exit();
}

namespace {
// A port nothing listens on right now (the kernel's pick for an ephemeral bind).
int free_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  int port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0)
    port = ntohs(addr.sin_port);
  ::close(fd);
  return port;
}
}  // namespace

RedisServer::RedisServer() : port_(free_port()) { launch(); }

RedisServer::~RedisServer() {
  if (process_) kill();
}

void RedisServer::launch() {
  process_ = Process::start({"redis-server", "--port", std::to_string(port_), "--bind", "127.0.0.1", "--save",
                             "", "--appendonly", "no", "--dir", dir_.path(), "--loglevel", "notice"});
  if (!process_->wait_for_line("Ready to accept connections"))
    throw std::runtime_error(
        "redis-server did not start (is it installed? host/setup.sh test installs it): " +
        process_->output());
}

void RedisServer::kill() {
  process_->signal(SIGKILL);
  process_->wait_exit();
  process_.reset();
}

void RedisServer::restart() {
  if (process_) kill();
  launch();
}

void RedisServer::pause() { process_->signal(SIGSTOP); }

void RedisServer::resume() { process_->signal(SIGCONT); }

std::string RedisServer::cli(const std::vector<std::string>& args) const {
  std::vector<std::string> argv{"redis-cli", "-p", std::to_string(port_)};
  argv.insert(argv.end(), args.begin(), args.end());
  return run(argv).output;
}

std::unique_ptr<Ferryd> Ferryd::start(const std::string& config, const std::vector<std::string>& extra_args,
                                      const std::vector<std::string>& env) {
  std::unique_ptr<Ferryd> f(new Ferryd());
  f->config_path_ = f->dir_.write("ferry.toml", config);
  // Ephemeral ports for both listeners: tests run side by side.
  std::vector<std::string> argv{FERRY_TEST_FERRYD, "--config",       f->config_path_, "--listen",
                                "127.0.0.1:0",     "--admin-listen", "127.0.0.1:0"};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  f->process_ = Process::start(argv, env);
  auto line = f->process_->wait_for_line("listening on ");
  if (!line) {
    ADD_FAILURE() << "ferryd did not become ready; output:\n" << f->process_->output();
    throw std::runtime_error("ferryd did not start");
  }
  auto at = line->find("listening on ") + 13;
  f->address_ = line->substr(at, line->find(' ', at) - at);
  if (auto admin = line->find("; admin "); admin != std::string::npos) {
    admin += 8;
    std::string value = line->substr(admin, line->find(';', admin) - admin);
    if (value != "off") f->admin_address_ = value;
  }
  return f;
}

// Every ferryd a test starts must end well: exit status 0 after SIGTERM and
// not a word from a sanitizer. A daemon that aborts on shutdown, or that ASan
// or TSan catches doing something wrong, fails the test that ran it.
void Ferryd::check_ending(std::optional<int> status) const {
  if (!status) {
    ADD_FAILURE() << "ferryd did not exit within 30 s of SIGTERM; output:\n" << process_->output();
    return;
  }
  if (*status != 0)
    ADD_FAILURE() << "ferryd exited with status " << *status << "; output:\n" << process_->output();
  std::string out = process_->output();
  for (const char* report : {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:",
                             "WARNING: ThreadSanitizer", "SUMMARY: UndefinedBehaviorSanitizer"})
    if (out.find(report) != std::string::npos)
      ADD_FAILURE() << "ferryd's output has a sanitizer report (" << report << "):\n" << out;
}

Ferryd::~Ferryd() {
  if (!process_ || checked_) return;
  // Whatever state the process was left in (a test may have signalled it).
  process_->signal(SIGTERM);
  auto status = process_->wait_exit(std::chrono::seconds(30));
  if (!status) process_->signal(SIGKILL);
  check_ending(status);
}

int Ferryd::stop() {
  process_->signal(SIGTERM);
  auto status = process_->wait_exit(std::chrono::seconds(30));
  check_ending(status);
  checked_ = true;
  return status.value_or(-1);
}

RunResult ferryd_refusing(const std::string& config, const std::vector<std::string>& env) {
  TempDir dir;
  auto path = dir.write("ferry.toml", config);
  return run(
      {FERRY_TEST_FERRYD, "--config", path, "--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0"}, env,
      std::chrono::seconds(20));
}

}  // namespace ferry::test
