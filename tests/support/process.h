#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace ferry::test {

// A child process whose stdout and stderr are captured together.
class Process {
 public:
  // env entries are "NAME=value", added to the current environment.
  static std::unique_ptr<Process> start(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& env = {});
  ~Process();

  pid_t pid() const { return pid_; }
  // Waits for an output line containing `needle`; returns that line.
  std::optional<std::string> wait_for_line(std::string_view needle,
                                           std::chrono::milliseconds timeout = std::chrono::seconds(10));
  std::string output() const;
  void signal(int sig);
  // The exit status (or 128 + signal), nullopt if still running after timeout.
  std::optional<int> wait_exit(std::chrono::milliseconds timeout = std::chrono::seconds(10));

 private:
  Process() = default;
  void read_loop(int fd);

  pid_t pid_ = -1;
  std::optional<int> exit_status_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool eof_ = false;
  std::thread reader_;
};

struct RunResult {
  int status = -1;
  std::string output;
};

// Runs a command to completion (killed after timeout).
RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env = {},
              std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace ferry::test
