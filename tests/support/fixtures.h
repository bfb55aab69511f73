#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/json/doc.h"
#include "tests/support/process.h"

namespace ferry::test {

// A fresh directory under the system temp dir, removed with the object.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  const std::string& path() const { return path_; }
  // Writes `content` to path()/name and returns the full path.
  std::string write(const std::string& name, const std::string& content) const;

 private:
  std::string path_;
};

// A running ferry-mock-upstream (tests/mock_upstream): an OpenAI and
// Anthropic look-alike with fault injection.
class MockUpstream {
 public:
  explicit MockUpstream(const std::vector<std::string>& args = {});
  const std::string& address() const { return address_; }
  std::string url() const { return "http://" + address_; }
  json::Value stats() const;
  // POST /_mock/faults with this JSON body.
  void set_faults(const std::string& json) const;
  void reset() const;
  int requests() const;
  void kill();

 private:
  std::unique_ptr<Process> process_;
  std::string address_;
};

// A real redis-server on a free loopback port, without persistence. The
// test command installs redis-server; a machine without it fails the test.
class RedisServer {
 public:
  RedisServer();
  ~RedisServer();
  int port() const { return port_; }
  std::string url() const { return "redis://127.0.0.1:" + std::to_string(port_) + "/0"; }
  void kill();
  // Starts it again on the same port (empty: it had no persistence).
  void restart();
  // SIGSTOP: a Redis that stops answering (its sockets stay open, the kernel
  // still accepts connections) rather than one that is gone. resume() sends
  // SIGCONT.
  void pause();
  void resume();
  // Runs redis-cli against it; returns its output.
  std::string cli(const std::vector<std::string>& args) const;

 private:
  void launch();
  TempDir dir_;
  int port_ = 0;
  std::unique_ptr<Process> process_;
};

// A running ferryd on a temporary config and an ephemeral port.
class Ferryd {
 public:
  // Starts ferryd with `config` (TOML text) and --listen 127.0.0.1:0; fails the
  // test if it does not report ready.
  static std::unique_ptr<Ferryd> start(const std::string& config,
                                       const std::vector<std::string>& extra_args = {},
                                       const std::vector<std::string>& env = {});
  ~Ferryd();

  const std::string& address() const { return address_; }
  // The admin listener (started on an ephemeral port too).
  const std::string& admin_address() const { return admin_address_; }
  Process& process() { return *process_; }
  std::string output() const { return process_->output(); }
  // A log line containing needle (waits up to timeout for it to appear).
  std::optional<std::string> log_line(const std::string& needle,
                                      std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
    return process_->wait_for_line(needle, timeout);
  }
  // SIGTERM, then the exit status. The test fails unless it is 0 and the
  // output has no sanitizer report (the destructor checks the same when a
  // test does not stop ferryd itself).
  int stop();
  const std::string& config_path() const { return config_path_; }

 private:
  Ferryd() = default;
  void check_ending(std::optional<int> status) const;
  bool checked_ = false;
  TempDir dir_;
  std::string config_path_;
  std::unique_ptr<Process> process_;
  std::string address_;
  std::string admin_address_;
};

// Starts ferryd expecting it to fail at startup; returns its status and output.
RunResult ferryd_refusing(const std::string& config, const std::vector<std::string>& env = {});

// The test-only plugins (tests/plugins) and the built-in ones.
std::string test_plugin_dir();
std::string source_dir();

// {"model":model,"messages":[{"role":"user","content":text}]} plus extra
// top-level fields given as JSON object text (e.g. R"("stream":true)").
std::string chat_body(const std::string& model, const std::string& text, const std::string& extra = "");

}  // namespace ferry::test
