#include "core/pipeline/async_state.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>

namespace ferry::pipeline {

namespace asio = boost::asio;

AsyncState::AsyncState(asio::any_io_executor executor) : executor_(executor), wake_timer_(executor) {}

void AsyncState::wake() {
  asio::post(executor_, [self = shared_from_this()] { self->wake_timer_.cancel(); });
}

void AsyncState::cancel() {
  cancelled_ = true;
  wake_timer_.cancel();
}

void AsyncState::post(std::function<void(bool ended)> fn) {
  asio::post(executor_, [self = shared_from_this(), fn = std::move(fn)] { fn(self->ended()); });
}

ferry_status AsyncState::resume(ferry_status result) {
  {
    std::lock_guard lock(mu_);
    if (ended_ || resumed_) return FERRY_ERR_BAD_STATE;
    resumed_ = true;
    resume_result_ = result;
  }
  wake();
  return FERRY_OK;
}

asio::awaitable<std::optional<ferry_status>> AsyncState::wait_resume(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      if (resumed_) {
        resumed_ = false;
        co_return resume_result_;
      }
    }
    if (cancelled_ || std::chrono::steady_clock::now() >= deadline) co_return std::nullopt;
    // The check above and arming the timer happen without a suspension in
    // between, so a wake() posted meanwhile can only run after the wait starts.
    wake_timer_.expires_at(deadline);
    co_await wake_timer_.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

ferry_status AsyncState::schedule(uint64_t delay_ns, ferry_task_fn fn, ferry_task* arg) {
  if (!fn) return FERRY_ERR_INVALID_ARGUMENT;
  auto task = std::make_shared<Task>(executor_);
  task->fn = fn;
  task->arg = arg;
  {
    std::unique_lock lock(mu_);
    if (ended_) {
      lock.unlock();
      fn(arg, 1);
      return FERRY_OK;
    }
    tasks_.push_back(task);
  }
  // Arm the timer on the worker thread: timers are not thread-safe objects.
  asio::post(executor_, [self = shared_from_this(), task, delay_ns] {
    {
      std::lock_guard lock(self->mu_);
      if (task->fired) return;
    }
    task->timer.expires_after(std::chrono::nanoseconds(delay_ns));
    task->timer.async_wait([self, task](boost::system::error_code) { self->fire(task, false); });
  });
  return FERRY_OK;
}

void AsyncState::fire(const std::shared_ptr<Task>& task, bool cancelled) {
  {
    std::lock_guard lock(mu_);
    if (task->fired) return;
    task->fired = true;
    std::erase(tasks_, task);
  }
  task->fn(task->arg, cancelled ? 1 : 0);
}

void AsyncState::end() {
  std::vector<std::shared_ptr<Task>> pending;
  {
    std::lock_guard lock(mu_);
    if (ended_) return;
    ended_ = true;
    pending.swap(tasks_);
  }
  for (auto& task : pending) {
    {
      std::lock_guard lock(mu_);
      if (task->fired) continue;
      task->fired = true;
    }
    task->timer.cancel();
    task->fn(task->arg, 1);
  }
  wake_timer_.cancel();
}

bool AsyncState::ended() const {
  std::lock_guard lock(mu_);
  return ended_;
}

ferry_status Sink::push(SinkEvent event) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (terminal_seen_) return FERRY_ERR_BAD_STATE;
    if (abandoned_) return FERRY_OK;
    terminal_seen_ = event.kind != SinkEvent::Kind::kChunk && event.kind != SinkEvent::Kind::kNative;
    events_.push_back(std::move(event));
    // Parse hooks push while nobody waits: no wake-up to post for them.
    wake = std::exchange(waiting_, false);
  }
  if (wake) async_->wake();
  return FERRY_OK;
}

bool Sink::is_source(std::string_view json) {
  if (!source_) return false;
  std::string_view text = source_->text();
  return json.data() == text.data() && json.size() == text.size();
}

void Sink::adopt_source() {
  if (!source_) return;
  std::lock_guard lock(mu_);
  bool moved = false;
  for (auto& ev : events_) {
    if (!ev.from_source) continue;
    // Only one event can take the document itself; a second copy of the same
    // text (an adapter echoing its input twice) gets the text.
    ev.doc = moved ? json::Doc::from_text(std::string(source_->text())) : std::move(*source_);
    ev.from_source = false;
    moved = true;
  }
  source_ = nullptr;
}

void Sink::drain_into(std::vector<SinkEvent>& out) {
  out.clear();
  std::lock_guard lock(mu_);
  out.swap(events_);
}

asio::awaitable<bool> Sink::wait(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    {
      std::lock_guard lock(mu_);
      waiting_ = events_.empty();
      if (!waiting_) co_return true;
    }
    if (async_->cancelled() || std::chrono::steady_clock::now() >= deadline) {
      std::lock_guard lock(mu_);
      waiting_ = false;
      co_return false;
    }
    auto& timer = async_->wake_timer();
    timer.expires_at(deadline);
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
  }
}

void Sink::abandon() {
  std::lock_guard lock(mu_);
  abandoned_ = true;
  events_.clear();
}

size_t Sink::pending() const {
  std::lock_guard lock(mu_);
  return events_.size();
}

void Sink::error_unless_handled(size_t mark, std::string message) {
  std::lock_guard lock(mu_);
  if (abandoned_ || mark > events_.size()) return;
  for (size_t i = mark; i < events_.size(); ++i)
    if (events_[i].kind == SinkEvent::Kind::kError) return;
  events_.resize(mark);
  SinkEvent ev{SinkEvent::Kind::kError, {}, 502, {}, {}, false, 0, {}, 0};
  ev.type = "server_error";
  ev.message = std::move(message);
  events_.push_back(std::move(ev));
  terminal_seen_ = true;
}

bool Sink::has_events() const {
  std::lock_guard lock(mu_);
  return !events_.empty();
}

bool Sink::terminated() const {
  std::lock_guard lock(mu_);
  return terminal_seen_;
}

}  // namespace ferry::pipeline
