// Namespace management, attachments and QoS limits. Each operation builds
// the next control block, commits it (durably), and only then changes the
// in-memory state, so a failed commit leaves everything as it was.
#include <algorithm>
#include <cerrno>
#include <cstring>

#include "store_ids.h"
#include "store_impl.h"
#include "store_status.h"

namespace offpath::emu {
namespace {

constexpr uint16_t kMaxControllerId = 0xffef;  // 0xfff0.. are reserved by NVMe

// Exclusive hold on a namespace slot: waits for the slot's in-flight I/O.
class ExclusiveSlot {
 public:
  explicit ExclusiveSlot(NamespaceSlot* slot) : slot_(slot) { pthread_rwlock_wrlock(&slot_->lock); }
  ~ExclusiveSlot() { pthread_rwlock_unlock(&slot_->lock); }
  ExclusiveSlot(const ExclusiveSlot&) = delete;
  ExclusiveSlot& operator=(const ExclusiveSlot&) = delete;

 private:
  NamespaceSlot* slot_;
};

}  // namespace

Status StoreImpl::CreateNamespace(uint64_t size_blocks, uint32_t block_bytes, uint32_t* nsid) {
  if (block_bytes != 512 && block_bytes != 4096) return status::kInvalidFormat;
  if (size_blocks == 0) return status::kInvalidField;
  // Thin provisioning allows the namespaces together to promise more than
  // the pool holds, but not a single namespace larger than the whole pool.
  if (size_blocks > capacity_bytes() / block_bytes) return status::kInsufficientCapacity;
  std::lock_guard<std::mutex> lock(meta_mutex_);
  uint32_t chosen = 0;
  for (uint32_t candidate = 1; candidate <= kMaxNamespaces; ++candidate) {
    if (control_.namespaces.count(candidate) == 0) {
      chosen = candidate;
      break;
    }
  }
  if (chosen == 0) return status::kNamespaceIdUnavailable;
  if (control_.next_tag >= format::kTagDirty) return status::kNamespaceIdUnavailable;
  format::NamespaceRecord record{};
  record.nsid = chosen;
  record.tag = control_.next_tag;
  record.size_blocks = size_blocks;
  record.block_bytes = block_bytes;
  if (!FillRandom(record.uuid, 16) || !FillRandom(record.nguid, 16)) return status::kInternalError;
  record.uuid[6] = static_cast<uint8_t>((record.uuid[6] & 0x0f) | 0x40);  // version 4 (random)
  record.uuid[8] = static_cast<uint8_t>((record.uuid[8] & 0x3f) | 0x80);  // RFC 4122 variant
  format::ControlBlock next = control_;
  next.namespaces[chosen] = record;
  next.next_tag = control_.next_tag + 1;
  if (Status committed = CommitControlLocked(std::move(next)); committed != status::kSuccess)
    return committed;
  // A new tag owns no map entry, so the namespace starts empty (all zeroes).
  auto* state = new NamespaceState(chosen, record.tag, block_bytes, size_blocks, pool_chunks_);
  Slot(chosen)->state.store(state, std::memory_order_release);
  *nsid = chosen;
  return status::kSuccess;
}

Status StoreImpl::DeleteNamespace(uint32_t nsid) {
  if (nsid == 0 || nsid > kMaxNamespaces) return status::kInvalidNamespace;
  NamespaceState* state;
  {
    ExclusiveSlot exclusive(Slot(nsid));
    std::lock_guard<std::mutex> lock(meta_mutex_);
    state = Slot(nsid)->state.load();
    if (state == nullptr) return status::kInvalidNamespace;
    // Commit first: from here on the namespace's tag names nobody, so its
    // map entries are orphans a reopen would reclaim even if we crash
    // before rewriting them below.
    format::ControlBlock next = control_;
    next.namespaces.erase(nsid);
    if (Status committed = CommitControlLocked(std::move(next)); committed != status::kSuccess)
      return committed;
    state->dead = true;
    std::set<uint32_t> pages;
    FreeMappedLocked(state, 0, &pages);
    // A failure here only delays reclaiming: the entries are orphans.
    (void)WriteMapPagesLocked(pages);
    Slot(nsid)->state.store(nullptr, std::memory_order_release);
  }
  delete state;
  return status::kSuccess;
}

Status StoreImpl::ResizeNamespace(uint32_t nsid, uint64_t size_blocks) {
  if (nsid == 0 || nsid > kMaxNamespaces) return status::kInvalidNamespace;
  ExclusiveSlot exclusive(Slot(nsid));
  std::lock_guard<std::mutex> lock(meta_mutex_);
  NamespaceState* state = Slot(nsid)->state.load();
  if (state == nullptr) return status::kInvalidNamespace;
  if (size_blocks == 0) return status::kInvalidField;
  if (size_blocks > capacity_bytes() / state->block_bytes) return status::kInsufficientCapacity;
  uint64_t old_blocks = state->size_blocks.load();
  if (size_blocks < old_blocks) {
    // Shrinking discards the range past the new end before the new size is
    // committed, and durably: a later grow must find zeroes there, whatever
    // crash happens in between. (A crash before the commit leaves the old
    // size with that range already zeroed: the data the caller asked to
    // drop is gone either way.)
    uint64_t new_bytes = size_blocks * state->block_bytes;
    uint64_t kept_chunks = ChunksFor(size_blocks, state->block_bytes);
    uint64_t tail_within = new_bytes % chunk_bytes_;
    if (tail_within != 0) {
      uint32_t value = state->map.Load(kept_chunks - 1);
      if (value != 0) {
        ChunkLocation where = Locate(value - 1);
        emu::MemberWrite zero;
        zero.offset_bytes = where.offset_bytes + tail_within;
        zero.length_bytes = chunk_bytes_ - tail_within;
        if (MemberWrite(where.member_index, zero) != 0) return status::kInternalError;
      }
    }
    std::set<uint32_t> pages;
    FreeMappedLocked(state, kept_chunks, &pages);
    if (WriteMapPagesLocked(pages) != 0) return status::kInternalError;
    if (SyncAllLocked() != 0) return status::kInternalError;
  }
  format::ControlBlock next = control_;
  next.namespaces[nsid].size_blocks = size_blocks;
  if (Status committed = CommitControlLocked(std::move(next)); committed != status::kSuccess)
    return committed;
  state->size_blocks.store(size_blocks);
  return status::kSuccess;
}

NamespaceInfo StoreImpl::InfoLocked(const format::NamespaceRecord& record) const {
  NamespaceInfo info{};
  info.nsid = record.nsid;
  info.size_blocks = record.size_blocks;
  info.block_bytes = record.block_bytes;
  memcpy(info.uuid, record.uuid, 16);
  memcpy(info.nguid, record.nguid, 16);
  info.attached_controllers = record.attached;
  const NamespaceState* state = slots_[record.nsid - 1].state.load();
  if (state != nullptr) {
    // Chunk granularity; the last chunk may reach past the namespace's end.
    uint64_t blocks_per_chunk = chunk_bytes_ / record.block_bytes;
    uint64_t allocated = state->mapped_chunks.load() * blocks_per_chunk;
    uint64_t last = ChunksFor(record.size_blocks, record.block_bytes) - 1;
    uint64_t past_end = (last + 1) * blocks_per_chunk - record.size_blocks;
    if (past_end != 0 && state->map.Load(last) != 0) allocated -= past_end;
    info.allocated_blocks = allocated;
  }
  return info;
}

bool StoreImpl::GetNamespace(uint32_t nsid, NamespaceInfo* info) const {
  std::lock_guard<std::mutex> lock(meta_mutex_);
  auto found = control_.namespaces.find(nsid);
  if (found == control_.namespaces.end()) return false;
  *info = InfoLocked(found->second);
  return true;
}

std::vector<NamespaceInfo> StoreImpl::Namespaces() const {
  std::lock_guard<std::mutex> lock(meta_mutex_);
  std::vector<NamespaceInfo> result;
  for (const auto& [nsid, record] : control_.namespaces) result.push_back(InfoLocked(record));
  return result;
}

Status StoreImpl::Attach(uint32_t nsid, uint16_t cntlid) {
  if (cntlid > kMaxControllerId) return status::kControllerListInvalid;
  std::lock_guard<std::mutex> lock(meta_mutex_);
  auto found = control_.namespaces.find(nsid);
  if (found == control_.namespaces.end()) return status::kInvalidNamespace;
  const auto& attached = found->second.attached;
  if (std::binary_search(attached.begin(), attached.end(), cntlid)) return status::kAlreadyAttached;
  if (attached.size() >= format::kMaxAttachmentsPerNamespace) return status::kControllerListInvalid;
  format::ControlBlock next = control_;
  auto& list = next.namespaces[nsid].attached;
  list.insert(std::upper_bound(list.begin(), list.end(), cntlid), cntlid);
  return CommitControlLocked(std::move(next));
}

Status StoreImpl::Detach(uint32_t nsid, uint16_t cntlid) {
  std::lock_guard<std::mutex> lock(meta_mutex_);
  auto found = control_.namespaces.find(nsid);
  if (found == control_.namespaces.end()) return status::kInvalidNamespace;
  const auto& attached = found->second.attached;
  if (!std::binary_search(attached.begin(), attached.end(), cntlid)) return status::kNotAttached;
  format::ControlBlock next = control_;
  auto& list = next.namespaces[nsid].attached;
  list.erase(std::lower_bound(list.begin(), list.end(), cntlid));
  return CommitControlLocked(std::move(next));
}

Status StoreImpl::SetLimits(const ControllerLimits& limits) {
  if (limits.cntlid > kMaxControllerId) return status::kInvalidField;
  std::lock_guard<std::mutex> lock(meta_mutex_);
  format::ControlBlock next = control_;
  // Unlimited in both is the default: keep no record for it.
  if (limits.iops == 0 && limits.bytes_per_second == 0) {
    if (next.limits.erase(limits.cntlid) == 0) return status::kSuccess;
  } else {
    if (next.limits.count(limits.cntlid) == 0 && next.limits.size() >= format::kMaxLimitEntries)
      return status::kInvalidField;
    next.limits[limits.cntlid] = limits;
  }
  return CommitControlLocked(std::move(next));
}

std::vector<ControllerLimits> StoreImpl::Limits() const {
  std::lock_guard<std::mutex> lock(meta_mutex_);
  std::vector<ControllerLimits> result;
  for (const auto& [cntlid, limit] : control_.limits) result.push_back(limit);
  return result;
}

StoreCounters StoreImpl::counters() const {
  StoreCounters result{};
  result.flushes = flushes_.load();
  result.chunk_allocations = chunk_allocations_.load();
  result.chunk_frees = chunk_frees_.load();
  result.metadata_commits = metadata_commits_.load();
  result.map_page_writes = map_page_writes_.load();
  result.dirty_chunk_zeroings = dirty_chunk_zeroings_.load();
  return result;
}

}  // namespace offpath::emu
