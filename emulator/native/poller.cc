#include "poller.h"

#include <poll.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>

#include "bar_layout.h"
#include "controller.h"

namespace offpath::emu {

namespace {
// The longest sleep without a wake-up: bounds how late a register write that
// nobody signalled (a host that ignores the protocol) is noticed.
constexpr int kMaxSleepMs = 100;

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}
}  // namespace

Poller::Poller(std::vector<Controller*> controllers, std::vector<uint8_t*> bars, uint32_t spin_us)
    : controllers_(std::move(controllers)), bars_(std::move(bars)), spin_us_(spin_us) {
  wake_fd_ = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
}

Poller::~Poller() {
  Stop();
  if (wake_fd_ >= 0) close(wake_fd_);
}

void Poller::Start() { thread_ = std::thread([this] { Run(); }); }

void Poller::Stop() {
  if (!thread_.joinable()) return;
  stop_.store(true, std::memory_order_release);
  Wake();
  thread_.join();
}

void Poller::Wake() {
  uint64_t one = 1;
  (void)!write(wake_fd_, &one, sizeof one);
}

void Poller::SetSleeping(uint32_t value) {
  for (uint8_t* bar : bars_)
    __atomic_store_n(reinterpret_cast<uint32_t*>(bar + kPollerSleepingOffset), value, __ATOMIC_SEQ_CST);
}

void Poller::Run() {
  using Clock = std::chrono::steady_clock;
  auto last_work = Clock::now();
  uint32_t idle_spins = 0;
  const auto spin = std::chrono::microseconds(spin_us_);
  while (!stop_.load(std::memory_order_acquire)) {
    auto now = Clock::now();
    auto deadline = Clock::time_point::max();
    uint32_t work = 0;
    for (Controller* controller : controllers_) work += controller->Poll(now, &deadline);
    if (work > 0) {
      last_work = now;
      continue;
    }
    if (now - last_work < spin) {
      // Spin for the next command, but let anything else that wants this
      // core run: on 2 cores the host that will ring the next doorbell may
      // be waiting for exactly this CPU (QD1 fell from ~1M to ~9k IOPS when
      // client and poller shared a core and the poller did not yield).
      CpuRelax();
      if ((++idle_spins & 7) == 0) sched_yield();
      continue;
    }
    // Going to sleep: deliver held interrupts, publish the flag, then one
    // last look (the flag store and these loads are ordered by the seq_cst
    // store + fence, matching the host's doorbell store + fence + flag load).
    for (Controller* controller : controllers_) controller->FlushInterrupts();
    SetSleeping(1);
    std::atomic_thread_fence(std::memory_order_seq_cst);
    bool pending = false;
    for (Controller* controller : controllers_) pending = pending || controller->HasPendingWork();
    if (!pending) {
      int timeout_ms = kMaxSleepMs;
      if (deadline != Clock::time_point::max()) {
        auto wait = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        timeout_ms = static_cast<int>(std::max<int64_t>(0, std::min<int64_t>(wait + 1, kMaxSleepMs)));
      }
      pollfd pfd{wake_fd_, POLLIN, 0};
      sleeps_.fetch_add(1, std::memory_order_relaxed);
      poll(&pfd, 1, timeout_ms);
      uint64_t drained;
      (void)!read(wake_fd_, &drained, sizeof drained);
      for (uint8_t* bar : bars_) __atomic_fetch_add(reinterpret_cast<uint32_t*>(bar + kWakeupsOffset), 1, __ATOMIC_RELAXED);
    }
    SetSleeping(0);
    last_work = Clock::now();
  }
  SetSleeping(0);
}

}  // namespace offpath::emu
