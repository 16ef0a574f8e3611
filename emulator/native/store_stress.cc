// Layout of the namespace during a run (U = 4 KiB units):
//   shared chunks: units dealt round-robin to the worker threads, so every
//     chunk is written, partly deallocated and zeroed by all of them at once
//     and allocations of one chunk race;
//   private chunks (two per worker, at the end): whole-chunk deallocations
//     and rewrites, so chunks go back to the pool and are reallocated while
//     the other threads allocate and write;
// plus a reader thread reading anywhere and a thread flushing now and then.
#include "store_stress.h"

#include <atomic>
#include <chrono>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace offpath::emu {
namespace {

constexpr uint32_t kUnitBytes = 4096;

uint64_t Mix(uint64_t value) {
  value += 0x9e3779b97f4a7c15ull;
  value = (value ^ (value >> 30)) * 0xbf58476d1ce4e5b9ull;
  value = (value ^ (value >> 27)) * 0x94d049bb133111ebull;
  return value ^ (value >> 31);
}

struct Random {
  uint64_t state;
  uint64_t Next() { return state = Mix(state); }
  uint64_t Below(uint64_t bound) { return Next() % bound; }
  double Unit() { return static_cast<double>(Next() >> 11) / 9007199254740992.0; }
};

void FillUnit(uint8_t* target, uint64_t unit, uint32_t version) {
  for (uint32_t word = 0; word < kUnitBytes / 8; ++word) {
    uint64_t value = Mix((unit << 32) ^ (uint64_t{version} << 12) ^ word);
    memcpy(target + word * 8, &value, 8);
  }
}

bool UnitMatches(const uint8_t* source, uint64_t unit, uint32_t version) {
  for (uint32_t word = 0; word < kUnitBytes / 8; ++word) {
    uint64_t value = 0;
    if (version != 0) value = Mix((unit << 32) ^ (uint64_t{version} << 12) ^ word);
    if (memcmp(source + word * 8, &value, 8) != 0) return false;
  }
  return true;
}

class StressRun {
 public:
  StressRun(Store* store, const StressConfig& config, const NamespaceInfo& ns)
      : store_(store), config_(config), block_bytes_(ns.block_bytes) {
    unit_blocks_ = kUnitBytes / block_bytes_;
    units_per_chunk_ = store->chunk_bytes() / kUnitBytes;
    uint64_t chunks = ns.size_blocks * block_bytes_ / store->chunk_bytes();
    private_first_chunk_ = chunks - 2ull * config.threads;
    total_units_ = chunks * units_per_chunk_;
    versions_.assign(total_units_, 0);
  }

  bool Usable(std::string* why) const {
    if (units_per_chunk_ == 0 || private_first_chunk_ < 1 || private_first_chunk_ > (1ull << 40)) {
      *why = "namespace too small for the stress layout";
      return false;
    }
    return true;
  }

  StressResult Run() {
    // Start from a known state: everything zero.
    Check(store_->Deallocate(config_.nsid, 0, total_units_ * unit_blocks_), "initial deallocate");
    std::vector<std::thread> threads;
    for (uint32_t t = 0; t < config_.threads; ++t) threads.emplace_back([this, t] { Worker(t); });
    threads.emplace_back([this] { Reader(); });
    threads.emplace_back([this] { Flusher(); });
    std::this_thread::sleep_for(std::chrono::milliseconds(config_.duration_ms));
    stop_.store(true);
    for (auto& thread : threads) thread.join();
    // Final sweep: every unit, single-threaded.
    std::vector<uint8_t> buffer(kUnitBytes);
    for (uint64_t unit = 0; unit < total_units_ && !Failed(); ++unit) VerifyUnit(unit, versions_[unit], buffer.data());
    StressResult result;
    result.operations = operations_.load();
    result.chunk_frees = chunk_frees_.load();
    std::lock_guard<std::mutex> lock(error_mutex_);
    result.error = error_;
    return result;
  }

 private:
  bool Failed() const { return failed_.load(std::memory_order_relaxed); }

  void Fail(const std::string& message) {
    std::lock_guard<std::mutex> lock(error_mutex_);
    if (error_.empty()) error_ = message;
    failed_.store(true);
    stop_.store(true);
  }

  void Check(Status value, const std::string& what) {
    if (value != 0) Fail(what + ": status 0x" + std::to_string(value));
  }

  uint64_t LbaOf(uint64_t unit) const { return unit * unit_blocks_; }

  void WriteUnits(uint64_t first_unit, uint32_t count, Random& random, bool fua) {
    std::vector<uint8_t> data(uint64_t{count} * kUnitBytes);
    for (uint32_t i = 0; i < count; ++i) FillUnit(data.data() + uint64_t{i} * kUnitBytes, first_unit + i, versions_[first_unit + i] + 1);
    // Two segments split at a random block boundary or mid-block.
    size_t cut = random.Below(data.size());
    Segment segments[2] = {{data.data(), cut}, {data.data() + cut, data.size() - cut}};
    Check(store_->Write(config_.nsid, LbaOf(first_unit), count * unit_blocks_, segments, 2, fua),
          "write unit " + std::to_string(first_unit));
    for (uint32_t i = 0; i < count; ++i) ++versions_[first_unit + i];
  }

  void VerifyUnit(uint64_t unit, uint32_t version, uint8_t* buffer) {
    Segment segment = {buffer, kUnitBytes};
    Check(store_->Read(config_.nsid, LbaOf(unit), unit_blocks_, &segment, 1), "read unit " + std::to_string(unit));
    if (!Failed() && !UnitMatches(buffer, unit, version))
      Fail("unit " + std::to_string(unit) + " does not hold version " + std::to_string(version));
  }

  void Worker(uint32_t thread) {
    Random random{config_.seed * 7919ull + thread};
    const uint64_t shared_units = private_first_chunk_ * units_per_chunk_;
    const uint64_t owned = shared_units / config_.threads;
    std::vector<uint8_t> buffer(kUnitBytes);
    while (!stop_.load(std::memory_order_relaxed)) {
      double choice = random.Unit();
      uint64_t unit = random.Below(owned) * config_.threads + thread;
      if (choice < 0.40) {
        WriteUnits(unit, 1, random, random.Unit() < 0.05);
      } else if (choice < 0.50) {
        Check(store_->Deallocate(config_.nsid, LbaOf(unit), unit_blocks_), "deallocate");
        versions_[unit] = 0;
      } else if (choice < 0.55) {
        Check(store_->WriteZeroes(config_.nsid, LbaOf(unit), unit_blocks_, random.Unit() < 0.2), "write zeroes");
        versions_[unit] = 0;
      } else if (choice < 0.75) {
        VerifyUnit(unit, versions_[unit], buffer.data());
      } else {
        uint64_t chunk = private_first_chunk_ + 2ull * thread + random.Below(2);
        uint64_t first = chunk * units_per_chunk_;
        double what = random.Unit();
        if (what < 0.3) {
          Check(store_->Deallocate(config_.nsid, LbaOf(first), units_per_chunk_ * unit_blocks_), "chunk deallocate");
          for (uint64_t i = 0; i < units_per_chunk_; ++i) versions_[first + i] = 0;
          chunk_frees_.fetch_add(1);
        } else if (what < 0.7) {
          uint32_t count = 1 + static_cast<uint32_t>(random.Below(std::min<uint64_t>(units_per_chunk_, 16)));
          uint64_t start = first + random.Below(units_per_chunk_ - count + 1);
          WriteUnits(start, count, random, false);
        } else {
          uint64_t pick = first + random.Below(units_per_chunk_);
          VerifyUnit(pick, versions_[pick], buffer.data());
        }
      }
      operations_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  // Reads anything, including units other threads are changing: only the
  // status can be checked, but it races lookups against frees.
  void Reader() {
    Random random{config_.seed * 104729ull};
    std::vector<uint8_t> buffer(16 * kUnitBytes);
    while (!stop_.load(std::memory_order_relaxed)) {
      uint32_t count = 1 + static_cast<uint32_t>(random.Below(16));
      uint64_t unit = random.Below(total_units_ - count + 1);
      Segment segment = {buffer.data(), uint64_t{count} * kUnitBytes};
      Check(store_->Read(config_.nsid, LbaOf(unit), count * unit_blocks_, &segment, 1), "reader");
      operations_.fetch_add(1, std::memory_order_relaxed);
    }
  }

  void Flusher() {
    while (!stop_.load(std::memory_order_relaxed)) {
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      Check(store_->Flush(), "flush");
    }
  }

  Store* store_;
  StressConfig config_;
  uint32_t block_bytes_;
  uint64_t unit_blocks_ = 0;
  uint64_t units_per_chunk_ = 0;
  uint64_t private_first_chunk_ = 0;
  uint64_t total_units_ = 0;
  // Each unit is written only by its owning thread (the final sweep reads
  // them after the joins), so plain integers suffice.
  std::vector<uint32_t> versions_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> failed_{false};
  std::atomic<uint64_t> operations_{0};
  std::atomic<uint64_t> chunk_frees_{0};
  std::mutex error_mutex_;
  std::string error_;
};

}  // namespace

StressResult RunStoreStress(Store* store, const StressConfig& config) {
  StressResult result;
  NamespaceInfo ns;
  if (config.threads == 0 || !store->GetNamespace(config.nsid, &ns)) {
    result.error = "no such namespace, or no threads";
    return result;
  }
  StressRun run(store, config, ns);
  if (!run.Usable(&result.error)) return result;
  return run.Run();
}

}  // namespace offpath::emu
