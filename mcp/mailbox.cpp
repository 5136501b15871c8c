#include "mcp/mailbox.hpp"

namespace sluice::mcp {

void Mailbox::push(std::string message) {
  {
    std::lock_guard lock(mu_);
    if (closed_) return;
    queue_.push_back(std::move(message));
    while (queue_.size() > capacity_) {
      queue_.pop_front();
      ++dropped_;
    }
  }
  wake();
}

void Mailbox::close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  wake();
}

void Mailbox::wake() {
  std::optional<asio::any_io_executor> executor;
  {
    std::lock_guard lock(mu_);
    if (!timer_) return;
    executor = executor_;
  }
  asio::post(*executor, [self = shared_from_this()] {
    asio::steady_timer* timer = nullptr;
    {
      std::lock_guard lock(self->mu_);
      timer = self->timer_;
    }
    if (timer) timer->cancel();
  });
}

bool Mailbox::closed() const {
  std::lock_guard lock(mu_);
  return closed_;
}

std::size_t Mailbox::dropped() const {
  std::lock_guard lock(mu_);
  return dropped_;
}

asio::awaitable<std::optional<std::vector<std::string>>> Mailbox::wait(std::chrono::milliseconds max_wait) {
  auto executor = co_await asio::this_coro::executor;
  asio::steady_timer timer(executor);
  timer.expires_after(max_wait);
  {
    std::lock_guard lock(mu_);
    if (!queue_.empty() || closed_) {
      std::vector<std::string> out(std::make_move_iterator(queue_.begin()),
                                   std::make_move_iterator(queue_.end()));
      queue_.clear();
      if (out.empty()) co_return std::nullopt;
      co_return out;
    }
    timer_ = &timer;
    executor_ = executor;
  }
  beast::error_code ec;
  co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
  std::lock_guard lock(mu_);
  timer_ = nullptr;
  std::vector<std::string> out(std::make_move_iterator(queue_.begin()),
                               std::make_move_iterator(queue_.end()));
  queue_.clear();
  if (out.empty() && closed_) co_return std::nullopt;
  co_return out;
}

}  // namespace sluice::mcp
