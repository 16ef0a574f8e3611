// A namespace's forward map: logical chunk -> pool chunk, read on every I/O
// without a lock. Two levels (a directory of 1024-entry leaves) so it can
// cover the namespace's largest possible size (the whole pool) from the
// start: a resize then never reallocates anything a concurrent reader might
// be looking at, and a sparse namespace costs one pointer per 1024 chunks.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

namespace offpath::emu {

class ChunkMap {
 public:
  explicit ChunkMap(uint64_t max_chunks)
      : leaf_count_((max_chunks + kLeafEntries - 1) / kLeafEntries),
        leaves_(new std::atomic<Leaf*>[leaf_count_]) {
    for (uint64_t i = 0; i < leaf_count_; ++i) leaves_[i].store(nullptr, std::memory_order_relaxed);
  }
  ~ChunkMap() {
    for (uint64_t i = 0; i < leaf_count_; ++i) delete leaves_[i].load(std::memory_order_relaxed);
  }
  ChunkMap(const ChunkMap&) = delete;
  ChunkMap& operator=(const ChunkMap&) = delete;

  // 0 when unmapped, else the pool chunk index + 1. Sequentially consistent
  // because the chunk pin protocol (store_io.cc) pairs it with a pin count.
  uint32_t Load(uint64_t logical) const {
    if (logical >= leaf_count_ * kLeafEntries) return 0;
    Leaf* leaf = leaves_[logical / kLeafEntries].load(std::memory_order_acquire);
    return leaf == nullptr ? 0 : leaf->entries[logical % kLeafEntries].load(std::memory_order_seq_cst);
  }

  // Writers hold the store's metadata mutex.
  void Set(uint64_t logical, uint32_t value) { Exchange(logical, value); }
  uint32_t Exchange(uint64_t logical, uint32_t value) {
    auto& slot = leaves_[logical / kLeafEntries];
    Leaf* leaf = slot.load(std::memory_order_acquire);
    if (leaf == nullptr) {
      if (value == 0) return 0;
      leaf = new Leaf();
      slot.store(leaf, std::memory_order_release);
    }
    return leaf->entries[logical % kLeafEntries].exchange(value, std::memory_order_seq_cst);
  }

  // Calls visit(logical, value) for every mapped chunk at or after `from`.
  template <typename Visit>
  void ForEachMapped(uint64_t from, Visit visit) const {
    for (uint64_t index = from / kLeafEntries; index < leaf_count_; ++index) {
      Leaf* leaf = leaves_[index].load(std::memory_order_acquire);
      if (leaf == nullptr) continue;
      for (uint64_t i = 0; i < kLeafEntries; ++i) {
        uint64_t logical = index * kLeafEntries + i;
        uint32_t value = leaf->entries[i].load(std::memory_order_relaxed);
        if (value != 0 && logical >= from) visit(logical, value);
      }
    }
  }

 private:
  static constexpr uint64_t kLeafEntries = 1024;
  struct Leaf {
    std::atomic<uint32_t> entries[kLeafEntries] = {};
  };

  uint64_t leaf_count_;
  std::unique_ptr<std::atomic<Leaf*>[]> leaves_;
};

}  // namespace offpath::emu
