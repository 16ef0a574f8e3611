// Per-VSIC rate limits: a token bucket per resource (commands, bytes). The
// controller stops fetching commands from a throttled VF's queues until the
// bucket refills, exactly as a hardware arbiter would hold them back; nothing
// is failed or dropped.
#pragma once

#include <chrono>
#include <cstdint>

namespace offpath::emu {

class TokenBucket {
 public:
  // rate_per_second 0 = unlimited. Burst: a tenth of a second of tokens, at
  // least one command's worth, so short bursts are smooth but bounded.
  void Configure(uint64_t rate_per_second, uint64_t minimum_burst) {
    rate_per_second_ = rate_per_second;
    burst_ = rate_per_second / 10 > minimum_burst ? rate_per_second / 10 : minimum_burst;
    tokens_ = static_cast<double>(burst_);
  }
  bool limited() const { return rate_per_second_ != 0; }

  // True if work may start now; spending may overdraw (a large command is
  // never starved), the debt delays the next one.
  bool Ready(std::chrono::steady_clock::time_point now) {
    if (rate_per_second_ == 0) return true;
    Refill(now);
    return tokens_ > 0;
  }
  void Spend(double amount) {
    if (rate_per_second_ != 0) tokens_ -= amount;
  }
  // When a bucket that is not Ready() will be again.
  std::chrono::steady_clock::time_point ReadyAt() const {
    // An unlimited bucket, or one with tokens left, is ready now.
    if (rate_per_second_ == 0 || tokens_ > 0) return last_;
    double deficit = 1 - tokens_;
    auto wait = std::chrono::nanoseconds(static_cast<int64_t>(deficit * 1e9 / static_cast<double>(rate_per_second_)));
    return last_ + wait;
  }

 private:
  void Refill(std::chrono::steady_clock::time_point now) {
    double seconds = std::chrono::duration<double>(now - last_).count();
    last_ = now;
    tokens_ += seconds * static_cast<double>(rate_per_second_);
    if (tokens_ > static_cast<double>(burst_)) tokens_ = static_cast<double>(burst_);
  }

  uint64_t rate_per_second_ = 0;
  uint64_t burst_ = 0;
  double tokens_ = 0;
  std::chrono::steady_clock::time_point last_ = std::chrono::steady_clock::now();
};

}  // namespace offpath::emu
