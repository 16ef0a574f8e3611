// The Store implementation's state, shared by its source files:
//   store.cc           opening: validation, format, loading and recovery
//   store_io.cc        the data path (Read/Write/Deallocate/WriteZeroes/Flush)
//   store_admin.cc     namespace, attachment and QoS management
//   store_metadata.cc  chunk allocation and freeing, map pages, control
//                      block commits, durability bookkeeping
//
// Locking, outermost first:
//   1. a namespace slot's rwlock: shared for every I/O on that namespace,
//      exclusive for deleting or resizing it (so no I/O is mid-flight then);
//   2. meta_mutex_: all metadata state (entries_, free lists, control_,
//      page states, sequences) and every metadata write;
//   3. chunk pins (not a lock: a count per pool chunk of I/Os touching it;
//      freeing a chunk waits for its count to reach zero, and no I/O holds a
//      pin while it waits for meta_mutex_, so that wait always ends).
#pragma once

#include <pthread.h>

#include <atomic>
#include <memory>
#include <mutex>
#include <set>
#include <vector>

#include "backend_member.h"
#include "store.h"
#include "store_chunk_map.h"
#include "store_faults.h"
#include "store_format.h"
#include "store_power_loss.h"

namespace offpath::emu {

struct NamespaceState {
  NamespaceState(uint32_t nsid_in, uint32_t tag_in, uint32_t block_bytes_in, uint64_t size_blocks_in,
                 uint64_t pool_chunks)
      : nsid(nsid_in), tag(tag_in), block_bytes(block_bytes_in), size_blocks(size_blocks_in), map(pool_chunks) {}

  const uint32_t nsid;
  const uint32_t tag;  // creation generation: map entries name their owner by it
  const uint32_t block_bytes;
  std::atomic<uint64_t> size_blocks;
  std::atomic<uint64_t> mapped_chunks{0};
  bool dead = false;  // deleted; guarded by meta_mutex_
  ChunkMap map;
};

struct NamespaceSlot {
  NamespaceSlot();
  ~NamespaceSlot();
  pthread_rwlock_t lock;
  std::atomic<NamespaceState*> state{nullptr};
};

// Holds a namespace slot's lock for one I/O; state is nullptr when the nsid
// names no namespace.
class SharedNamespace {
 public:
  SharedNamespace(NamespaceSlot* slots, uint32_t nsid);
  ~SharedNamespace();
  SharedNamespace(const SharedNamespace&) = delete;
  SharedNamespace& operator=(const SharedNamespace&) = delete;
  NamespaceState* state = nullptr;

 private:
  NamespaceSlot* slot_ = nullptr;
};

class StoreImpl final : public Store {
 public:
  // control: the newest valid control block, read from newest_control_slot.
  // supply: the power-loss simulation's, or nullptr.
  StoreImpl(std::vector<std::unique_ptr<BackendMember>> members, format::ControlBlock control,
            int newest_control_slot, const FaultConfig& faults, std::shared_ptr<PowerSupply> supply);
  ~StoreImpl() override;

  uint64_t capacity_bytes() const override { return pool_chunks_ * chunk_bytes_; }
  uint64_t free_bytes() const override { return free_chunks_.load() * chunk_bytes_; }
  uint32_t chunk_bytes() const override { return chunk_bytes_; }
  bool volatile_write_cache() const override { return volatile_cache_; }

  Status CreateNamespace(uint64_t size_blocks, uint32_t block_bytes, uint32_t* nsid) override;
  Status DeleteNamespace(uint32_t nsid) override;
  Status ResizeNamespace(uint32_t nsid, uint64_t size_blocks) override;
  bool GetNamespace(uint32_t nsid, NamespaceInfo* info) const override;
  std::vector<NamespaceInfo> Namespaces() const override;
  Status Attach(uint32_t nsid, uint16_t cntlid) override;
  Status Detach(uint32_t nsid, uint16_t cntlid) override;
  Status SetLimits(const ControllerLimits& limits) override;
  std::vector<ControllerLimits> Limits() const override;

  Status Read(uint32_t nsid, uint64_t lba, uint32_t blocks, const Segment* segments,
              size_t segment_count) override;
  Status Write(uint32_t nsid, uint64_t lba, uint32_t blocks, const Segment* segments,
               size_t segment_count, bool fua) override;
  Status Deallocate(uint32_t nsid, uint64_t lba, uint64_t blocks) override;
  Status WriteZeroes(uint32_t nsid, uint64_t lba, uint64_t blocks, bool fua) override;
  Status Flush() override;

  StoreCounters counters() const override;

  StoreFaults* faults() override { return &faults_; }
  std::shared_ptr<PowerSupply> power_supply() const override { return supply_; }
  bool power_lost() const override { return supply_ != nullptr && supply_->cut(); }

  // Opening (store.cc): reads the map pages and builds every namespace's
  // forward map and the free lists, repairing what a crash left behind.
  bool LoadMap(bool just_formatted, OpenFailure* failure);

 private:
  struct PageState {
    uint64_t sequence[2] = {0, 0};  // 0: that copy holds nothing valid
    uint8_t newest = 0;
  };
  struct ChunkLocation {
    BackendMember* member;
    size_t member_index;
    uint64_t offset_bytes;
  };

  ChunkLocation Locate(uint32_t pool_chunk) const;
  uint64_t ChunksFor(uint64_t size_blocks, uint32_t block_bytes) const;
  NamespaceInfo InfoLocked(const format::NamespaceRecord& record) const;
  NamespaceSlot* Slot(uint32_t nsid) { return &slots_[nsid - 1]; }

  // Data path helpers (store_io.cc).
  bool PinChunk(NamespaceState* ns, uint64_t logical, uint32_t* pool_chunk);
  void Unpin(uint32_t pool_chunk) { pins_[pool_chunk].fetch_sub(1, std::memory_order_release); }
  int MemberWrite(size_t member_index, const emu::MemberWrite& write);
  bool ZeroMappedPiece(NamespaceState* ns, uint64_t logical, uint64_t within, uint64_t piece, bool durable);
  // Test mode (brokenFlush): the device lies about durability — Flush and
  // FUA succeed without making anything durable. FUA has to lie too, or a
  // client that relies on FUA alone (the KV store's power mode) could never
  // be shown to notice a device that keeps nothing.
  bool LyingAboutDurability() const { return faults_.active() && faults_.broken_flush(); }

  // Metadata (store_metadata.cc); *Locked means meta_mutex_ is held.
  Status AllocateRange(NamespaceState* ns, uint64_t first_logical, uint64_t last_logical);
  Status FreeChunks(NamespaceState* ns, const std::vector<uint64_t>& logical_chunks);
  void FreeMappedLocked(NamespaceState* ns, uint64_t from_logical, std::set<uint32_t>* pages);
  void WaitUnpinned(uint32_t pool_chunk) const;
  int WriteMapPageLocked(uint32_t page);
  int WriteMapPagesLocked(const std::set<uint32_t>& pages);
  Status CommitControlLocked(format::ControlBlock next);
  int SyncMetadataLocked();
  int SyncAllLocked();
  Status MakeMetadataDurable();

  std::vector<std::unique_ptr<BackendMember>> members_;
  std::vector<uint64_t> member_first_chunk_;
  std::unique_ptr<std::atomic<bool>[]> member_unsynced_;
  const uint32_t chunk_bytes_;
  const uint64_t pool_chunks_;
  const uint32_t crc_seed_;
  bool volatile_cache_ = false;

  mutable std::mutex meta_mutex_;
  format::ControlBlock control_;  // as last committed
  int newest_control_slot_ = 0;
  std::vector<format::MapEntry> entries_;  // one per map entry slot (>= pool chunks)
  std::vector<PageState> pages_;
  // Metadata writes are numbered; every write numbered <= durable_sequence_
  // is on stable storage, which decides which map page copy may be
  // overwritten (never the only durable one).
  uint64_t next_sequence_ = 1;
  uint64_t written_sequence_ = 0;
  uint64_t durable_sequence_ = 0;
  std::vector<uint32_t> clean_free_;  // stacks of pool chunks
  std::vector<uint32_t> dirty_free_;
  std::atomic<uint64_t> free_chunks_{0};
  uint8_t* page_buffer_ = nullptr;     // one aligned map page
  uint8_t* control_buffer_ = nullptr;  // one aligned control slot

  NamespaceSlot slots_[kMaxNamespaces];
  std::unique_ptr<std::atomic<uint32_t>[]> pins_;

  std::atomic<uint64_t> flushes_{0};
  std::atomic<uint64_t> chunk_allocations_{0};
  std::atomic<uint64_t> chunk_frees_{0};
  std::atomic<uint64_t> metadata_commits_{0};
  std::atomic<uint64_t> map_page_writes_{0};
  std::atomic<uint64_t> dirty_chunk_zeroings_{0};

  // Test modes.
  StoreFaults faults_;
  std::shared_ptr<PowerSupply> supply_;
};

}  // namespace offpath::emu
