#include "tests/support/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstring>
#include <stdexcept>

extern char** environ;

namespace ferry::test {

std::unique_ptr<Process> Process::start(const std::vector<std::string>& argv,
                                        const std::vector<std::string>& env) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed");
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);

  std::vector<std::string> env_strings;
  for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
  for (const auto& e : env) {
    auto name = e.substr(0, e.find('=') + 1);
    std::erase_if(env_strings, [&](const std::string& s) { return s.starts_with(name); });
    env_strings.push_back(e);
  }
  std::vector<char*> cargv;
  for (const auto& a : argv) cargv.push_back(const_cast<char*>(a.c_str()));
  cargv.push_back(nullptr);
  std::vector<char*> cenv;
  for (const auto& e : env_strings) cenv.push_back(const_cast<char*>(e.c_str()));
  cenv.push_back(nullptr);

  std::unique_ptr<Process> p(new Process());
  // posix_spawnp: tools such as openssl and socat are found on PATH.
  int rc = posix_spawnp(&p->pid_, cargv[0], &actions, nullptr, cargv.data(), cenv.data());
  posix_spawn_file_actions_destroy(&actions);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    p->pid_ = -1;
    p->exit_status_ = 127;
    throw std::runtime_error("cannot start " + argv[0] + ": " + std::strerror(rc));
  }
  p->reader_ = std::thread([proc = p.get(), fd = fds[0]] { proc->read_loop(fd); });
  return p;
}

void Process::read_loop(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    std::lock_guard lock(mu_);
    if (n <= 0) {
      eof_ = true;
      cv_.notify_all();
      break;
    }
    output_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
  }
  ::close(fd);
}

Process::~Process() {
  // Never kill(-1) or kill(0): that would signal every process we may signal.
  if (!exit_status_ && pid_ > 0) {
    ::kill(pid_, SIGKILL);
    wait_exit(std::chrono::seconds(5));
  }
  if (reader_.joinable()) reader_.join();
}

std::optional<std::string> Process::wait_for_line(std::string_view needle,
                                                  std::chrono::milliseconds timeout) {
  std::unique_lock lock(mu_);
  size_t searched = 0;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    size_t at = output_.find(needle, searched > needle.size() ? searched - needle.size() : 0);
    if (at != std::string::npos) {
      size_t begin = output_.rfind('\n', at);
      begin = begin == std::string::npos ? 0 : begin + 1;
      size_t end = output_.find('\n', at);
      if (end != std::string::npos) return output_.substr(begin, end - begin);
    }
    searched = output_.size();
    if (eof_) return std::nullopt;
    if (cv_.wait_until(lock, deadline) == std::cv_status::timeout) return std::nullopt;
  }
}

std::string Process::output() const {
  std::lock_guard lock(mu_);
  return output_;
}

void Process::signal(int sig) {
  if (!exit_status_ && pid_ > 0) ::kill(pid_, sig);
}

std::optional<int> Process::wait_exit(std::chrono::milliseconds timeout) {
  if (exit_status_ || pid_ <= 0) return exit_status_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_status_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      // Let the reader collect the last output before anyone reads it.
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::seconds(2), [&] { return eof_; });
      return exit_status_;
    }
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
}

RunResult run(const std::vector<std::string>& argv, const std::vector<std::string>& env,
              std::chrono::milliseconds timeout) {
  auto p = Process::start(argv, env);
  auto status = p->wait_exit(timeout);
  RunResult r;
  if (!status) {
    p->signal(SIGKILL);
    status = p->wait_exit();
  }
  r.status = status.value_or(-1);
  r.output = p->output();
  return r;
}

}  // namespace ferry::test
