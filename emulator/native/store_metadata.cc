// Chunk allocation and freeing, and the metadata writes that make them
// crash-consistent. The ordering rules (docs/emulator-store.md argues them):
//  - a chunk's map entry naming its new owner is written (pwrite) before any
//    data goes to that chunk, so after kill -9 every acknowledged write is
//    reachable;
//  - a reused chunk is zeroed, and the zeroes plus its "free" entry are made
//    durable, before it is claimed, so no power loss can show one
//    namespace's data to another;
//  - a map page copy that is the only durable one is never overwritten;
//  - the control block alternates between two slots and is made durable on
//    every commit, so the other slot always holds the previous durable one.
#include <sched.h>

#include <algorithm>
#include <cerrno>

#include "store_impl.h"
#include "store_status.h"

namespace offpath::emu {

using format::kEntriesPerPage;
using format::kPageBytes;
using format::kTagClean;
using format::kTagDirty;

Status StoreImpl::AllocateRange(NamespaceState* ns, uint64_t first_logical, uint64_t last_logical) {
  std::lock_guard<std::mutex> lock(meta_mutex_);
  if (ns->dead) return status::kInvalidNamespace;
  // A concurrent shrink may have moved the end since the range was checked.
  if (last_logical >= ChunksFor(ns->size_blocks.load(), ns->block_bytes)) return status::kLbaOutOfRange;
  std::vector<uint64_t> wanted;
  for (uint64_t logical = first_logical; logical <= last_logical; ++logical) {
    if (ns->map.Load(logical) == 0) wanted.push_back(logical);
  }
  if (wanted.empty()) return status::kSuccess;
  // All or nothing: a write that cannot get every chunk it needs fails
  // before it has changed anything.
  if (wanted.size() > clean_free_.size() + dirty_free_.size()) return status::kCapacityExceeded;

  std::vector<uint32_t> chunks;
  size_t reused_count = 0;
  for (size_t i = 0; i < wanted.size(); ++i) {
    if (!clean_free_.empty()) {
      chunks.push_back(clean_free_.back());
      clean_free_.pop_back();
    } else {
      chunks.push_back(dirty_free_.back());
      dirty_free_.pop_back();
      ++reused_count;
    }
  }
  auto give_back = [&] {
    // Dirty chunks were taken last, so they are at the end of `chunks`.
    for (size_t i = chunks.size(); i-- > 0;) {
      if (i >= chunks.size() - reused_count)
        dirty_free_.push_back(chunks[i]);
      else
        clean_free_.push_back(chunks[i]);
    }
  };

  if (reused_count > 0) {
    for (size_t i = chunks.size() - reused_count; i < chunks.size(); ++i) {
      ChunkLocation where = Locate(chunks[i]);
      emu::MemberWrite zero;
      zero.offset_bytes = where.offset_bytes;
      zero.length_bytes = chunk_bytes_;
      if (MemberWrite(where.member_index, zero) != 0) {
        give_back();
        return status::kWriteFault;
      }
    }
    dirty_chunk_zeroings_.fetch_add(reused_count);
    if (SyncAllLocked() != 0) {
      give_back();
      return status::kWriteFault;
    }
  }

  std::set<uint32_t> pages;
  for (size_t i = 0; i < chunks.size(); ++i) {
    entries_[chunks[i]] = {ns->tag, static_cast<uint32_t>(wanted[i])};
    pages.insert(chunks[i] / kEntriesPerPage);
  }
  if (WriteMapPagesLocked(pages) != 0) {
    for (size_t i = 0; i < chunks.size(); ++i) {
      bool reused = i >= chunks.size() - reused_count;
      entries_[chunks[i]] = {reused ? kTagDirty : kTagClean, 0};
    }
    // A page that did reach the disk names an owner for a chunk that holds
    // only zeroes; the next write of that page puts the truth back.
    give_back();
    return status::kWriteFault;
  }
  // Only now may I/O find (and write into) the chunks.
  for (size_t i = 0; i < chunks.size(); ++i) ns->map.Set(wanted[i], chunks[i] + 1);
  ns->mapped_chunks.fetch_add(chunks.size());
  free_chunks_.fetch_sub(chunks.size());
  chunk_allocations_.fetch_add(chunks.size());
  return status::kSuccess;
}

Status StoreImpl::FreeChunks(NamespaceState* ns, const std::vector<uint64_t>& logical_chunks) {
  std::lock_guard<std::mutex> lock(meta_mutex_);
  std::set<uint32_t> pages;
  uint64_t freed = 0;
  for (uint64_t logical : logical_chunks) {
    uint32_t value = ns->map.Exchange(logical, 0);
    if (value == 0) continue;
    uint32_t chunk = value - 1;
    WaitUnpinned(chunk);
    // Dirty, not clean: the data is still there until the chunk is reused,
    // which is when it gets zeroed (cheaper than zeroing on every free).
    entries_[chunk] = {kTagDirty, 0};
    pages.insert(chunk / kEntriesPerPage);
    dirty_free_.push_back(chunk);
    ++freed;
  }
  int rc = WriteMapPagesLocked(pages);
  ns->mapped_chunks.fetch_sub(freed);
  free_chunks_.fetch_add(freed);
  chunk_frees_.fetch_add(freed);
  return rc == 0 ? status::kSuccess : status::kWriteFault;
}

void StoreImpl::FreeMappedLocked(NamespaceState* ns, uint64_t from_logical, std::set<uint32_t>* pages) {
  uint64_t freed = 0;
  ns->map.ForEachMapped(from_logical, [&](uint64_t logical, uint32_t value) {
    ns->map.Exchange(logical, 0);
    uint32_t chunk = value - 1;
    WaitUnpinned(chunk);
    entries_[chunk] = {kTagDirty, 0};
    pages->insert(chunk / kEntriesPerPage);
    dirty_free_.push_back(chunk);
    ++freed;
  });
  ns->mapped_chunks.fetch_sub(freed);
  free_chunks_.fetch_add(freed);
  chunk_frees_.fetch_add(freed);
}

void StoreImpl::WaitUnpinned(uint32_t pool_chunk) const {
  // An I/O pins a chunk only for the duration of one backing read or write.
  while (pins_[pool_chunk].load(std::memory_order_seq_cst) != 0) sched_yield();
}

int StoreImpl::WriteMapPageLocked(uint32_t page) {
  PageState& state = pages_[page];
  // Overwrite the newest copy while it is not yet durable (the other one
  // is); once it is durable, write the other copy instead.
  int copy = state.sequence[state.newest] > durable_sequence_ ? state.newest : 1 - state.newest;
  uint64_t sequence = next_sequence_++;
  format::EncodeMapPage(page, sequence, crc_seed_, &entries_[uint64_t{page} * kEntriesPerPage], page_buffer_);
  struct iovec iov = {page_buffer_, kPageBytes};
  emu::MemberWrite write;
  write.offset_bytes = control_.map_offset_bytes + (uint64_t{page} * 2 + copy) * kPageBytes;
  write.length_bytes = kPageBytes;
  write.iov = &iov;
  write.iov_count = 1;
  int rc = MemberWrite(0, write);
  if (rc != 0) {
    // That copy may now be garbage; the other is the one to trust.
    state.sequence[copy] = 0;
    state.newest = static_cast<uint8_t>(1 - copy);
    return rc;
  }
  state.sequence[copy] = sequence;
  state.newest = static_cast<uint8_t>(copy);
  written_sequence_ = sequence;
  map_page_writes_.fetch_add(1);
  return 0;
}

int StoreImpl::WriteMapPagesLocked(const std::set<uint32_t>& pages) {
  int first_error = 0;
  for (uint32_t page : pages) {
    int rc = WriteMapPageLocked(page);
    if (rc != 0 && first_error == 0) first_error = rc;
  }
  return first_error;
}

Status StoreImpl::CommitControlLocked(format::ControlBlock next) {
  next.sequence = next_sequence_++;
  size_t length_bytes = format::EncodedControlBytes(next);
  if (length_bytes > format::kControlSlotBytes) return status::kInternalError;
  format::EncodeControl(next, control_buffer_);
  // The newest slot is durable (every commit syncs), so the other slot is
  // free to overwrite: a crash mid-write leaves the newest intact.
  int slot = 1 - newest_control_slot_;
  struct iovec iov = {control_buffer_, length_bytes};
  emu::MemberWrite write;
  write.offset_bytes = format::kControlOffsetBytes + uint64_t(slot) * format::kControlSlotBytes;
  write.length_bytes = length_bytes;
  write.iov = &iov;
  write.iov_count = 1;
  if (MemberWrite(0, write) != 0) return status::kInternalError;
  written_sequence_ = next.sequence;
  if (SyncMetadataLocked() != 0) return status::kInternalError;
  newest_control_slot_ = slot;
  control_ = std::move(next);
  metadata_commits_.fetch_add(1);
  return status::kSuccess;
}

int StoreImpl::SyncMetadataLocked() {
  uint64_t covered = written_sequence_;
  int rc = members_[0]->Sync();
  if (rc == 0) durable_sequence_ = std::max(durable_sequence_, covered);
  return rc;
}

int StoreImpl::SyncAllLocked() {
  uint64_t covered = written_sequence_;
  int first_error = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    member_unsynced_[i].store(false);
    int rc = members_[i]->Sync();
    if (rc != 0) {
      member_unsynced_[i].store(true);
      if (first_error == 0) first_error = rc;
    }
  }
  if (first_error == 0) durable_sequence_ = std::max(durable_sequence_, covered);
  return first_error;
}

Status StoreImpl::MakeMetadataDurable() {
  uint64_t covered;
  {
    std::lock_guard<std::mutex> lock(meta_mutex_);
    if (written_sequence_ <= durable_sequence_) return status::kSuccess;
    covered = written_sequence_;
  }
  // Outside the mutex: other I/O may keep allocating while this syncs.
  if (members_[0]->Sync() != 0) return status::kWriteFault;
  std::lock_guard<std::mutex> lock(meta_mutex_);
  durable_sequence_ = std::max(durable_sequence_, covered);
  return status::kSuccess;
}

}  // namespace offpath::emu
