// Injected faults, a test mode of the store (docs/emulator-store.md,
// "Power-loss simulation and fault injection"): media errors on chosen
// namespace blocks, slow commands, and a device that lies about durability
// (Flush and FUA succeed, nothing becomes durable: "broken flush") so that the
// power-loss simulation can prove it notices.
//
// The data path asks active() first (one relaxed load), so a store with no
// faults injected pays nothing else.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>
#include <vector>

#include "store.h"

namespace offpath::emu {

class StoreFaults {
 public:
  explicit StoreFaults(const FaultConfig& config);

  void AddMediaError(const MediaErrorSpec& error);
  // Every injected media error of nsid (0: of every namespace).
  void ClearMediaErrors(uint32_t nsid);
  std::vector<MediaErrorSpec> MediaErrors() const;
  void SetDelay(uint32_t delay_us, uint32_t nsid);
  void SetBrokenFlush(bool broken);

  bool active() const { return active_.load(std::memory_order_relaxed); }
  // True when [lba, lba + blocks) of nsid overlaps an injected error of that
  // kind (write: Write and Write Zeroes; otherwise Read).
  bool MediaError(uint32_t nsid, uint64_t lba, uint64_t blocks, bool write) const;
  // Sleeps for the injected delay when it applies to nsid (0: Flush, which
  // names no namespace, is delayed by any delay).
  void Delay(uint32_t nsid) const;
  bool broken_flush() const { return broken_flush_.load(std::memory_order_relaxed); }
  uint32_t delay_us() const { return delay_us_.load(std::memory_order_relaxed); }

 private:
  void UpdateActive();

  mutable std::mutex mutex_;
  std::vector<MediaErrorSpec> errors_;
  std::atomic<bool> have_errors_{false};
  std::atomic<uint32_t> delay_us_{0};
  std::atomic<uint32_t> delay_nsid_{0};
  std::atomic<bool> broken_flush_{false};
  std::atomic<bool> active_{false};
};

}  // namespace offpath::emu
