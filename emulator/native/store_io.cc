// The data path, called concurrently from the controller's poller threads.
//
// An I/O is split at chunk boundaries. For each piece it looks the chunk up
// in the namespace's lock-free forward map and "pins" it (a per-chunk count)
// for the duration of the backing read or write: freeing a chunk first
// unmaps it and then waits for its pin count to drain, so data can never
// land in a chunk that has been handed to someone else. The lookup/pin
// handshake is the classic store-then-load pairing, which is why the map
// and the pins use sequentially consistent operations.
#include <cerrno>
#include <cstring>
#include <vector>

#include "store_impl.h"
#include "store_status.h"

namespace offpath::emu {
namespace {

// Walks the command's host memory segments, handing out the iovecs for
// each chunk-sized piece in turn.
class SegmentCursor {
 public:
  SegmentCursor(const Segment* segments, size_t count) : segments_(segments), count_(count) {}

  // The next length_bytes as iovecs in *out (cleared first).
  void Take(uint64_t length_bytes, std::vector<struct iovec>* out) {
    out->clear();
    while (length_bytes > 0 && index_ < count_) {
      const Segment& segment = segments_[index_];
      uint64_t available = segment.length_bytes - offset_;
      uint64_t piece = std::min(available, length_bytes);
      if (piece > 0) out->push_back({segment.data + offset_, piece});
      offset_ += piece;
      length_bytes -= piece;
      if (offset_ == segment.length_bytes) {
        ++index_;
        offset_ = 0;
      }
    }
  }

 private:
  const Segment* segments_;
  size_t count_;
  size_t index_ = 0;
  uint64_t offset_ = 0;
};

uint64_t SegmentBytes(const Segment* segments, size_t count) {
  uint64_t total = 0;
  for (size_t i = 0; i < count; ++i) total += segments[i].length_bytes;
  return total;
}

// Each poller thread keeps its iovec scratch space between commands.
thread_local std::vector<struct iovec> scratch_iov;

Status CheckRange(const NamespaceState* ns, uint64_t lba, uint64_t blocks) {
  uint64_t size = ns->size_blocks.load();
  if (lba >= size || blocks > size - lba) return status::kLbaOutOfRange;
  return status::kSuccess;
}

Status WriteStatusFor(int rc) {
  // A sparse file on a full host filesystem: the pool's promise of space
  // was thin provisioning's, and the host could not keep it.
  return rc == -ENOSPC ? status::kCapacityExceeded : status::kWriteFault;
}

}  // namespace

SharedNamespace::SharedNamespace(NamespaceSlot* slots, uint32_t nsid) {
  if (nsid == 0 || nsid > kMaxNamespaces) return;
  slot_ = &slots[nsid - 1];
  pthread_rwlock_rdlock(&slot_->lock);
  state = slot_->state.load(std::memory_order_acquire);
}

SharedNamespace::~SharedNamespace() {
  if (slot_ != nullptr) pthread_rwlock_unlock(&slot_->lock);
}

bool StoreImpl::PinChunk(NamespaceState* ns, uint64_t logical, uint32_t* pool_chunk) {
  for (;;) {
    uint32_t value = ns->map.Load(logical);
    if (value == 0) return false;
    uint32_t chunk = value - 1;
    pins_[chunk].fetch_add(1, std::memory_order_seq_cst);
    // Still mapped after the pin is visible: a concurrent free will now wait
    // for us. Otherwise it got there first; look again.
    if (ns->map.Load(logical) == value) {
      *pool_chunk = chunk;
      return true;
    }
    pins_[chunk].fetch_sub(1, std::memory_order_release);
  }
}

int StoreImpl::MemberWrite(size_t member_index, const emu::MemberWrite& write) {
  int rc = members_[member_index]->Write(write);
  // Marked after the write completes (and before it is acknowledged): a
  // Flush that clears the mark earlier owes this write nothing, and the mark
  // then stays for the next Flush. Checked first so that steady writing does
  // not keep bouncing the flag's cache line between poller threads.
  std::atomic<bool>& unsynced = member_unsynced_[member_index];
  if (!write.durable && !unsynced.load(std::memory_order_acquire)) unsynced.store(true, std::memory_order_seq_cst);
  return rc;
}

Status StoreImpl::Read(uint32_t nsid, uint64_t lba, uint32_t blocks, const Segment* segments,
                       size_t segment_count) {
  if (faults_.active()) faults_.Delay(nsid);
  SharedNamespace guard(slots_, nsid);
  NamespaceState* ns = guard.state;
  if (ns == nullptr) return status::kInvalidNamespace;
  if (Status range = CheckRange(ns, lba, blocks); range != status::kSuccess) return range;
  if (faults_.active() && faults_.MediaError(nsid, lba, blocks, false)) return status::kUnrecoveredReadError;
  uint64_t remaining = uint64_t{blocks} * ns->block_bytes;
  if (SegmentBytes(segments, segment_count) != remaining) return status::kInvalidField;
  uint64_t offset = lba * ns->block_bytes;
  SegmentCursor cursor(segments, segment_count);
  while (remaining > 0) {
    uint64_t logical = offset / chunk_bytes_;
    uint64_t within = offset % chunk_bytes_;
    uint64_t piece = std::min<uint64_t>(remaining, chunk_bytes_ - within);
    cursor.Take(piece, &scratch_iov);
    uint32_t chunk;
    if (PinChunk(ns, logical, &chunk)) {
      ChunkLocation where = Locate(chunk);
      int rc = where.member->Read(where.offset_bytes + within, scratch_iov.data(),
                                  static_cast<int>(scratch_iov.size()), piece);
      Unpin(chunk);
      if (rc != 0) return status::kUnrecoveredReadError;
    } else {
      // Thin provisioning: a chunk never written reads as zeroes.
      for (const auto& iov : scratch_iov) memset(iov.iov_base, 0, iov.iov_len);
    }
    offset += piece;
    remaining -= piece;
  }
  return status::kSuccess;
}

Status StoreImpl::Write(uint32_t nsid, uint64_t lba, uint32_t blocks, const Segment* segments,
                        size_t segment_count, bool fua) {
  if (faults_.active()) faults_.Delay(nsid);
  SharedNamespace guard(slots_, nsid);
  NamespaceState* ns = guard.state;
  if (ns == nullptr) return status::kInvalidNamespace;
  if (Status range = CheckRange(ns, lba, blocks); range != status::kSuccess) return range;
  // An injected media error fails the command before any data moves.
  if (faults_.active() && faults_.MediaError(nsid, lba, blocks, true)) return status::kWriteFault;
  uint64_t remaining = uint64_t{blocks} * ns->block_bytes;
  if (SegmentBytes(segments, segment_count) != remaining) return status::kInvalidField;
  if (remaining == 0) return status::kSuccess;
  fua = fua && !LyingAboutDurability();
  uint64_t offset = lba * ns->block_bytes;
  uint64_t first_logical = offset / chunk_bytes_;
  uint64_t last_logical = (offset + remaining - 1) / chunk_bytes_;
  // Claim every missing chunk before moving any data, so a full pool fails
  // the command without having written part of it.
  for (uint64_t logical = first_logical; logical <= last_logical; ++logical) {
    if (ns->map.Load(logical) == 0) {
      Status allocated = AllocateRange(ns, first_logical, last_logical);
      if (allocated != status::kSuccess) return allocated;
      break;
    }
  }
  SegmentCursor cursor(segments, segment_count);
  while (remaining > 0) {
    uint64_t logical = offset / chunk_bytes_;
    uint64_t within = offset % chunk_bytes_;
    uint64_t piece = std::min<uint64_t>(remaining, chunk_bytes_ - within);
    uint32_t chunk;
    while (!PinChunk(ns, logical, &chunk)) {
      // A concurrent Deallocate freed it again: claim a fresh one.
      Status allocated = AllocateRange(ns, logical, logical);
      if (allocated != status::kSuccess) return allocated;
    }
    cursor.Take(piece, &scratch_iov);
    ChunkLocation where = Locate(chunk);
    emu::MemberWrite write;
    write.offset_bytes = where.offset_bytes + within;
    write.length_bytes = piece;
    write.iov = scratch_iov.data();
    write.iov_count = static_cast<int>(scratch_iov.size());
    write.durable = fua;
    int rc = MemberWrite(where.member_index, write);
    Unpin(chunk);
    if (rc != 0) return WriteStatusFor(rc);
    offset += piece;
    remaining -= piece;
  }
  // FUA also covers the allocation: the map entries that make the data
  // reachable must be durable too.
  return fua ? MakeMetadataDurable() : status::kSuccess;
}

Status StoreImpl::Deallocate(uint32_t nsid, uint64_t lba, uint64_t blocks) {
  if (faults_.active()) faults_.Delay(nsid);
  SharedNamespace guard(slots_, nsid);
  NamespaceState* ns = guard.state;
  if (ns == nullptr) return status::kInvalidNamespace;
  if (Status range = CheckRange(ns, lba, blocks); range != status::kSuccess) return range;
  uint64_t size_bytes = ns->size_blocks.load() * ns->block_bytes;
  uint64_t offset = lba * ns->block_bytes;
  uint64_t remaining = blocks * ns->block_bytes;
  std::vector<uint64_t> whole_chunks;
  while (remaining > 0) {
    uint64_t logical = offset / chunk_bytes_;
    uint64_t within = offset % chunk_bytes_;
    uint64_t piece = std::min<uint64_t>(remaining, chunk_bytes_ - within);
    // A range covering a chunk's whole share of the namespace gives the
    // chunk back (the part past the namespace's end is zero already).
    if (within == 0 && (piece == chunk_bytes_ || offset + piece == size_bytes)) {
      whole_chunks.push_back(logical);
    } else {
      if (!ZeroMappedPiece(ns, logical, within, piece, false)) return status::kWriteFault;
    }
    offset += piece;
    remaining -= piece;
  }
  if (whole_chunks.empty()) return status::kSuccess;
  return FreeChunks(ns, whole_chunks);
}

// Zeroes `piece` bytes at `within` of logical chunk `logical` in place if
// the chunk is mapped (an unmapped one reads as zeroes already). False on a
// member write error.
bool StoreImpl::ZeroMappedPiece(NamespaceState* ns, uint64_t logical, uint64_t within, uint64_t piece, bool durable) {
  uint32_t chunk;
  if (!PinChunk(ns, logical, &chunk)) return true;
  ChunkLocation where = Locate(chunk);
  emu::MemberWrite zero;
  zero.offset_bytes = where.offset_bytes + within;
  zero.length_bytes = piece;
  zero.durable = durable;
  int rc = MemberWrite(where.member_index, zero);
  Unpin(chunk);
  return rc == 0;
}

Status StoreImpl::WriteZeroes(uint32_t nsid, uint64_t lba, uint64_t blocks, bool fua) {
  if (faults_.active()) faults_.Delay(nsid);
  SharedNamespace guard(slots_, nsid);
  NamespaceState* ns = guard.state;
  if (ns == nullptr) return status::kInvalidNamespace;
  if (Status range = CheckRange(ns, lba, blocks); range != status::kSuccess) return range;
  if (faults_.active() && faults_.MediaError(nsid, lba, blocks, true)) return status::kWriteFault;
  fua = fua && !LyingAboutDurability();
  uint64_t offset = lba * ns->block_bytes;
  uint64_t remaining = blocks * ns->block_bytes;
  // Unmapped chunks already read as zeroes; mapped ones are zeroed in place
  // and stay allocated (Write Zeroes is a write, not a deallocation).
  while (remaining > 0) {
    uint64_t logical = offset / chunk_bytes_;
    uint64_t within = offset % chunk_bytes_;
    uint64_t piece = std::min<uint64_t>(remaining, chunk_bytes_ - within);
    if (!ZeroMappedPiece(ns, logical, within, piece, fua)) return status::kWriteFault;
    offset += piece;
    remaining -= piece;
  }
  // No map entry changes here, but the range's mapping may itself be
  // pending: after a deallocation (and perhaps a reallocation) that is not
  // yet durable, a power loss would bring the old chunk back with its old
  // data. So FUA, as for Write, also makes pending metadata durable.
  return fua ? MakeMetadataDurable() : status::kSuccess;
}

Status StoreImpl::Flush() {
  flushes_.fetch_add(1);
  if (faults_.active()) {
    faults_.Delay(0);
    // Test mode: a Flush that promises durability and keeps nothing.
    if (LyingAboutDurability()) return status::kSuccess;
  }
  uint64_t covered;
  bool metadata_pending;
  {
    std::lock_guard<std::mutex> lock(meta_mutex_);
    covered = written_sequence_;
    metadata_pending = written_sequence_ > durable_sequence_;
  }
  // Not under the metadata mutex: I/O (and allocations) carry on meanwhile;
  // only what completed before this point is promised durable.
  int first_error = 0;
  for (size_t i = members_.size(); i-- > 0;) {
    bool data_pending = member_unsynced_[i].exchange(false);
    if (!data_pending && !(i == 0 && metadata_pending)) continue;
    int rc = members_[i]->Sync();
    if (rc != 0) {
      member_unsynced_[i].store(true);
      if (first_error == 0) first_error = rc;
    }
  }
  if (first_error != 0) return status::kWriteFault;
  std::lock_guard<std::mutex> lock(meta_mutex_);
  durable_sequence_ = std::max(durable_sequence_, covered);
  return status::kSuccess;
}

}  // namespace offpath::emu
