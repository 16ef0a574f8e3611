// A poller thread: runs its controllers' queues while there is work, spins a
// little after the last command (the next one usually follows within
// microseconds), then sleeps on an eventfd. Before sleeping it raises each
// controller's poller_sleeping flag, fences, and looks once more, so a host
// that rings a doorbell either is seen by that last look or sees the flag and
// signals the eventfd. Idle CPU is ~0.
#pragma once

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

namespace offpath::emu {

class Controller;

class Poller {
 public:
  Poller(std::vector<Controller*> controllers, std::vector<uint8_t*> bars, uint32_t spin_us);
  ~Poller();
  Poller(const Poller&) = delete;
  Poller& operator=(const Poller&) = delete;

  void Start();
  void Stop();
  int wake_fd() const { return wake_fd_; }
  // Wakes the thread (e.g. after the JS side changed a controller).
  void Wake();
  uint64_t sleeps() const { return sleeps_.load(std::memory_order_relaxed); }

 private:
  void Run();
  void SetSleeping(uint32_t value);

  std::vector<Controller*> controllers_;
  std::vector<uint8_t*> bars_;
  uint32_t spin_us_;
  int wake_fd_ = -1;
  std::thread thread_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> sleeps_{0};
};

}  // namespace offpath::emu
