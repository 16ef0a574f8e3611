#include "store_faults.h"

#include <algorithm>
#include <chrono>
#include <thread>

namespace offpath::emu {

StoreFaults::StoreFaults(const FaultConfig& config) {
  for (const auto& error : config.media_errors) AddMediaError(error);
  SetDelay(config.delay_us, config.delay_nsid);
  SetBrokenFlush(config.broken_flush);
}

void StoreFaults::AddMediaError(const MediaErrorSpec& error) {
  if (error.blocks == 0 || (!error.read && !error.write)) return;
  std::lock_guard<std::mutex> lock(mutex_);
  errors_.push_back(error);
  have_errors_.store(true);
  UpdateActive();
}

void StoreFaults::ClearMediaErrors(uint32_t nsid) {
  std::lock_guard<std::mutex> lock(mutex_);
  errors_.erase(std::remove_if(errors_.begin(), errors_.end(),
                               [nsid](const MediaErrorSpec& error) { return nsid == 0 || error.nsid == nsid; }),
                errors_.end());
  have_errors_.store(!errors_.empty());
  UpdateActive();
}

std::vector<MediaErrorSpec> StoreFaults::MediaErrors() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return errors_;
}

void StoreFaults::SetDelay(uint32_t delay_us, uint32_t nsid) {
  std::lock_guard<std::mutex> lock(mutex_);
  delay_nsid_.store(nsid);
  delay_us_.store(delay_us);
  UpdateActive();
}

void StoreFaults::SetBrokenFlush(bool broken) {
  std::lock_guard<std::mutex> lock(mutex_);
  broken_flush_.store(broken);
  UpdateActive();
}

void StoreFaults::UpdateActive() {
  active_.store(have_errors_.load() || delay_us_.load() != 0 || broken_flush_.load());
}

bool StoreFaults::MediaError(uint32_t nsid, uint64_t lba, uint64_t blocks, bool write) const {
  if (!have_errors_.load(std::memory_order_relaxed) || blocks == 0) return false;
  std::lock_guard<std::mutex> lock(mutex_);
  for (const auto& error : errors_) {
    if (error.nsid != nsid || !(write ? error.write : error.read)) continue;
    if (lba < error.lba + error.blocks && error.lba < lba + blocks) return true;
  }
  return false;
}

void StoreFaults::Delay(uint32_t nsid) const {
  uint32_t delay = delay_us_.load(std::memory_order_relaxed);
  if (delay == 0) return;
  uint32_t only = delay_nsid_.load(std::memory_order_relaxed);
  if (only != 0 && nsid != 0 && only != nsid) return;
  std::this_thread::sleep_for(std::chrono::microseconds(delay));
}

}  // namespace offpath::emu
