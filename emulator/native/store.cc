// Opening a store: check the configuration, open the pool members, then
// either format a blank pool or load an existing one — refusing, with a
// message that says why, any pool whose metadata is corrupt or does not
// belong to the members given in that order.
//
// Loading is also crash recovery: the newest valid control block and map
// page copies win, and map entries a crash left pointing at deleted (or
// shrunk-away) namespaces are reclaimed as free chunks.
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <unordered_map>

#include "backend_io.h"
#include "store_ids.h"
#include "store_impl.h"

namespace offpath::emu {

using format::kEntriesPerPage;
using format::kPageBytes;
using format::kTagClean;
using format::kTagDirty;

namespace {

constexpr uint32_t kDefaultChunkBytes = 1u << 20;
constexpr uint32_t kMinChunkBytes = 4096;
constexpr uint32_t kMaxChunkBytes = 1u << 30;
// Map pages are read and written in batches of this many pages (both copies).
constexpr uint32_t kMapBatchPages = 256;

struct AlignedBuffer {
  explicit AlignedBuffer(size_t length_bytes) {
    void* memory = nullptr;
    if (posix_memalign(&memory, kPageBytes, length_bytes) == 0) data = static_cast<uint8_t*>(memory);
  }
  ~AlignedBuffer() { free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  uint8_t* data = nullptr;
};

OpenFailure IoFailure(int rc, const char* what, const BackendMember& member) {
  return {ErrnoName(-rc), std::string(what) + " " + member.path() + ": " + strerror(-rc)};
}

bool ValidateConfig(const StoreConfig& config, OpenFailure* failure) {
  if (config.chunk_bytes != 0 &&
      (config.chunk_bytes < kMinChunkBytes || config.chunk_bytes > kMaxChunkBytes ||
       (config.chunk_bytes & (config.chunk_bytes - 1)) != 0)) {
    *failure = {"EINVAL", "chunkBytes must be a power of two from 4096 to 1 GiB, got " +
                              std::to_string(config.chunk_bytes)};
    return false;
  }
  if (config.kind == BackendKind::kMemory) {
    if (!config.paths.empty()) {
      *failure = {"EINVAL", "a memory store takes no paths"};
      return false;
    }
    return true;
  }
  if (config.paths.empty()) {
    *failure = {"EINVAL", "a file or block store needs at least one path"};
    return false;
  }
  if (config.paths.size() > format::kMaxMembers) {
    *failure = {"EINVAL", "a pool has at most " + std::to_string(format::kMaxMembers) + " members"};
    return false;
  }
  // The same file twice (perhaps by two names) would corrupt itself.
  std::vector<std::pair<dev_t, ino_t>> seen;
  for (const auto& path : config.paths) {
    struct stat status {};
    if (stat(path.c_str(), &status) != 0) continue;  // missing: reported when opening
    std::pair<dev_t, ino_t> identity = S_ISBLK(status.st_mode)
                                           ? std::pair<dev_t, ino_t>{status.st_rdev, 0}
                                           : std::pair<dev_t, ino_t>{status.st_dev, status.st_ino};
    if (std::find(seen.begin(), seen.end(), identity) != seen.end()) {
      *failure = {"EINVAL", path + " is listed twice in the pool"};
      return false;
    }
    seen.push_back(identity);
  }
  return true;
}

// Opens every member; known_zero[i] is true when member i was just created
// (or is memory) and so holds nothing but zeroes.
bool OpenMembers(const StoreConfig& config, std::vector<std::unique_ptr<BackendMember>>* members,
                 std::vector<bool>* known_zero, OpenFailure* failure) {
  if (config.kind == BackendKind::kMemory) {
    auto member = OpenMemoryMember(config.size_bytes, failure);
    if (!member) return false;
    members->push_back(std::move(member));
    known_zero->push_back(true);
    return true;
  }
  for (const auto& path : config.paths) {
    std::unique_ptr<BackendMember> member;
    bool created = false;
    if (config.kind == BackendKind::kFile)
      member = OpenFileMember(path, config.create, config.size_bytes, &created, failure);
    else
      member = OpenBlockMember(path, failure);
    if (!member) return false;
    members->push_back(std::move(member));
    known_zero->push_back(created);
  }
  return true;
}

// Writes a fresh, empty store onto blank members.
bool Format(const std::vector<std::unique_ptr<BackendMember>>& members, const std::vector<bool>& known_zero,
            uint32_t chunk_bytes, OpenFailure* failure) {
  format::ControlBlock block;
  std::vector<uint64_t> sizes;
  for (const auto& member : members) sizes.push_back(member->size_bytes());
  std::string why;
  if (!format::ComputeGeometry(sizes, chunk_bytes, &block, &why)) {
    *failure = {"EINVAL", why};
    return false;
  }
  if (!FillRandom(block.store_uuid, 16)) {
    *failure = {"EIO", "getrandom failed"};
    return false;
  }
  for (auto& record : block.members) {
    if (!FillRandom(record.uuid, 16)) {
      *failure = {"EIO", "getrandom failed"};
      return false;
    }
  }
  // Zero every member where that is cheap (hole punching, discard), so all
  // chunks start clean; where it is not, chunks start dirty and are zeroed
  // one by one when first used.
  bool clean = true;
  for (size_t i = 0; i < members.size(); ++i) {
    if (known_zero[i]) continue;
    MemberWrite zero;
    zero.offset_bytes = format::kLabelBytes;
    zero.length_bytes = members[i]->size_bytes() - format::kLabelBytes;
    zero.zero_only_if_cheap = true;
    int rc = members[i]->Write(zero);
    if (rc == -EOPNOTSUPP) {
      clean = false;
    } else if (rc != 0) {
      *failure = IoFailure(rc, "cannot zero", *members[i]);
      return false;
    }
  }
  const uint32_t seed = format::MapCrcSeed(block.store_uuid);
  const uint64_t first_sequence = 1;
  // Map pages: copy 0 holds the initial entries, copy 1 zeroes (invalid).
  {
    AlignedBuffer batch(kMapBatchPages * 2 * kPageBytes);
    if (batch.data == nullptr) {
      *failure = {"ENOMEM", "cannot allocate a format buffer"};
      return false;
    }
    std::vector<format::MapEntry> entries(kEntriesPerPage);
    for (uint32_t first = 0; first < block.map_page_count; first += kMapBatchPages) {
      uint32_t count = std::min(kMapBatchPages, block.map_page_count - first);
      memset(batch.data, 0, uint64_t{count} * 2 * kPageBytes);
      for (uint32_t i = 0; i < count; ++i) {
        uint64_t page = first + i;
        for (uint32_t e = 0; e < kEntriesPerPage; ++e) {
          uint64_t chunk = page * kEntriesPerPage + e;
          entries[e] = {(!clean && chunk < block.pool_chunk_count) ? kTagDirty : kTagClean, 0};
        }
        format::EncodeMapPage(static_cast<uint32_t>(page), first_sequence, seed, entries.data(),
                              batch.data + uint64_t{i} * 2 * kPageBytes);
      }
      int rc = WriteAt(members[0].get(), block.map_offset_bytes + uint64_t{first} * 2 * kPageBytes, batch.data,
                       uint64_t{count} * 2 * kPageBytes);
      if (rc != 0) {
        *failure = IoFailure(rc, "cannot write the chunk map to", *members[0]);
        return false;
      }
    }
  }
  // Control block in slot 0; slot 1 gets an invalid (zero) header.
  {
    block.sequence = first_sequence + 1;
    size_t length = format::EncodedControlBytes(block);
    AlignedBuffer buffer(std::max<size_t>(length, kPageBytes));
    if (buffer.data == nullptr) {
      *failure = {"ENOMEM", "cannot allocate a format buffer"};
      return false;
    }
    format::EncodeControl(block, buffer.data);
    int rc = WriteAt(members[0].get(), format::kControlOffsetBytes, buffer.data, length);
    if (rc == 0) {
      memset(buffer.data, 0, kPageBytes);
      rc = WriteAt(members[0].get(), format::kControlOffsetBytes + format::kControlSlotBytes, buffer.data,
                   kPageBytes);
    }
    if (rc != 0) {
      *failure = IoFailure(rc, "cannot write the control block to", *members[0]);
      return false;
    }
  }
  // Labels last, member 0's very last and only after everything else is
  // durable: until it exists the pool still counts as blank.
  AlignedBuffer label_page(kPageBytes);
  if (label_page.data == nullptr) {
    *failure = {"ENOMEM", "cannot allocate a format buffer"};
    return false;
  }
  for (size_t pass = 0; pass < 2; ++pass) {
    for (size_t i = 0; i < members.size(); ++i) {
      if ((pass == 0) == (i == 0)) continue;
      format::Label label{};
      memcpy(label.store_uuid, block.store_uuid, 16);
      memcpy(label.member_uuid, block.members[i].uuid, 16);
      label.member_index = static_cast<uint32_t>(i);
      label.member_count = static_cast<uint32_t>(members.size());
      label.size_bytes = members[i]->size_bytes();
      label.chunk_bytes = chunk_bytes;
      if (pass == 1) {
        for (const auto& member : members) {
          int rc = member->Sync();
          if (rc != 0) {
            *failure = IoFailure(rc, "cannot sync", *member);
            return false;
          }
        }
      }
      format::EncodeLabel(label, label_page.data);
      int rc = WriteAt(members[i].get(), 0, label_page.data, kPageBytes);
      if (rc == 0 && pass == 1) rc = members[i]->Sync();
      if (rc != 0) {
        *failure = IoFailure(rc, "cannot write the label of", *members[i]);
        return false;
      }
    }
  }
  return true;
}

// Reads one control slot; false (with why) if it holds no valid block of
// this store.
bool ReadControlSlot(BackendMember* member, int slot, const uint8_t store_uuid[16], format::ControlBlock* block,
                     std::string* why) {
  uint64_t offset = format::kControlOffsetBytes + uint64_t(slot) * format::kControlSlotBytes;
  AlignedBuffer buffer(format::kControlSlotBytes);
  if (buffer.data == nullptr) {
    *why = "out of memory";
    return false;
  }
  int rc = ReadAt(member, offset, buffer.data, kPageBytes);
  if (rc != 0) {
    *why = std::string("read failed: ") + strerror(-rc);
    return false;
  }
  size_t claimed = format::ControlClaimedBytes(buffer.data);
  if (claimed == 0) {
    *why = "no control block header";
    return false;
  }
  if (claimed > kPageBytes) {
    rc = ReadAt(member, offset + kPageBytes, buffer.data + kPageBytes, claimed - kPageBytes);
    if (rc != 0) {
      *why = std::string("read failed: ") + strerror(-rc);
      return false;
    }
  }
  if (!format::DecodeControl(buffer.data, claimed, block, why)) return false;
  if (memcmp(block->store_uuid, store_uuid, 16) != 0) {
    *why = "control block of another store";
    return false;
  }
  return true;
}

// Checks the members against the control block: same store, same order,
// same sizes, and a geometry that recomputes to what was recorded.
bool CheckMembers(const std::vector<std::unique_ptr<BackendMember>>& members, const std::vector<format::Label>& labels,
                  const std::vector<format::LabelState>& states, const std::vector<std::string>& whys,
                  const format::ControlBlock& block, OpenFailure* failure) {
  const std::string store_id = HexString(block.store_uuid, 16);
  if (members.size() != block.members.size()) {
    *failure = {"EMISMATCH", "the pool of store " + store_id + " has " + std::to_string(block.members.size()) +
                                 " member(s), " + std::to_string(members.size()) + " given"};
    return false;
  }
  for (size_t i = 0; i < members.size(); ++i) {
    const std::string& path = members[i]->path();
    const format::Label& label = labels[i];
    switch (states[i]) {
      case format::LabelState::kValid:
        break;
      case format::LabelState::kBlank:
        *failure = {"EMISMATCH", path + " (member " + std::to_string(i) + ") is blank: not a member of store " +
                                     store_id};
        return false;
      case format::LabelState::kForeign:
        *failure = {"EMISMATCH", path + " (member " + std::to_string(i) + ") " + whys[i]};
        return false;
      case format::LabelState::kCorrupt:
        *failure = {"ECORRUPT", path + " (member " + std::to_string(i) + "): " + whys[i]};
        return false;
    }
    if (memcmp(label.store_uuid, block.store_uuid, 16) != 0) {
      *failure = {"EMISMATCH", path + " belongs to store " + HexString(label.store_uuid, 16) + ", not to store " +
                                   store_id + " (wrong pool member)"};
      return false;
    }
    if (label.member_index != i) {
      *failure = {"EMISMATCH", path + " is member " + std::to_string(label.member_index) + " of its pool but was given as member " +
                                   std::to_string(i) + " (members reordered?)"};
      return false;
    }
    if (memcmp(label.member_uuid, block.members[i].uuid, 16) != 0) {
      *failure = {"EMISMATCH", path + " has member id " + HexString(label.member_uuid, 16) + " but the pool expects " +
                                   HexString(block.members[i].uuid, 16) + " there"};
      return false;
    }
    if (label.member_count != block.members.size() || label.chunk_bytes != block.chunk_bytes) {
      *failure = {"ECORRUPT", path + ": its label disagrees with the control block about the pool's shape"};
      return false;
    }
    if (members[i]->size_bytes() != block.members[i].size_bytes) {
      *failure = {"EMISMATCH", path + " is " + std::to_string(members[i]->size_bytes()) +
                                   " bytes but was " + std::to_string(block.members[i].size_bytes) +
                                   " when the pool was formatted (resized member?)"};
      return false;
    }
  }
  format::ControlBlock expected;
  std::vector<uint64_t> sizes;
  for (const auto& member : members) sizes.push_back(member->size_bytes());
  std::string why;
  bool same = format::ComputeGeometry(sizes, block.chunk_bytes, &expected, &why) &&
              expected.map_offset_bytes == block.map_offset_bytes &&
              expected.map_page_count == block.map_page_count &&
              expected.pool_chunk_count == block.pool_chunk_count &&
              block.control_slot_bytes == format::kControlSlotBytes;
  for (size_t i = 0; same && i < members.size(); ++i) {
    same = expected.members[i].data_start_bytes == block.members[i].data_start_bytes &&
           expected.members[i].chunk_count == block.members[i].chunk_count;
  }
  if (!same) {
    *failure = {"ECORRUPT", "the control block of store " + store_id + " records a pool geometry that does not match its members"};
    return false;
  }
  return true;
}

bool CheckNamespaces(const format::ControlBlock& block, OpenFailure* failure) {
  uint64_t capacity = block.pool_chunk_count * block.chunk_bytes;
  for (const auto& [nsid, record] : block.namespaces) {
    bool ok = nsid >= 1 && nsid <= kMaxNamespaces && record.nsid == nsid &&
              (record.block_bytes == 512 || record.block_bytes == 4096) && record.size_blocks > 0 &&
              record.size_blocks <= capacity / record.block_bytes && record.tag != kTagClean &&
              record.tag < block.next_tag && record.tag != kTagDirty;
    if (!ok) {
      *failure = {"ECORRUPT", "namespace " + std::to_string(nsid) + " in the control block is inconsistent"};
      return false;
    }
  }
  return true;
}

bool ValidatePowerLoss(const PowerLossConfig& config, OpenFailure* failure) {
  if (!config.enabled) return true;
  if (config.tear_bytes < 512 || config.tear_bytes > (1u << 20) || (config.tear_bytes & (config.tear_bytes - 1)) != 0) {
    *failure = {"EINVAL", "powerLoss.tearBytes must be a power of two from 512 to 1 MiB, got " +
                              std::to_string(config.tear_bytes)};
    return false;
  }
  if (!(config.survive >= 0 && config.survive <= 1)) {
    *failure = {"EINVAL", "powerLoss.survive must be from 0 to 1"};
    return false;
  }
  return true;
}

// image: members a simulated power cut left behind (then config.paths and
// create do not apply), or empty to open config's members.
std::unique_ptr<Store> OpenStore(const StoreConfig& config, std::vector<std::unique_ptr<BackendMember>> image,
                                 std::shared_ptr<PowerSupply>* supply_out, OpenFailure* failure) {
  if (!ValidatePowerLoss(config.power_loss, failure)) return nullptr;
  std::vector<std::unique_ptr<BackendMember>> members;
  std::vector<bool> known_zero;
  if (image.empty()) {
    if (!ValidateConfig(config, failure)) return nullptr;
    if (!OpenMembers(config, &members, &known_zero, failure)) return nullptr;
  } else {
    StoreConfig checked;
    checked.chunk_bytes = config.chunk_bytes;  // a memory-kind config with no paths: checks chunkBytes only
    if (!ValidateConfig(checked, failure)) return nullptr;
    members = std::move(image);
    known_zero.assign(members.size(), false);
  }
  std::shared_ptr<PowerSupply> supply;
  if (config.power_loss.enabled) {
    supply = std::make_shared<PowerSupply>(config.power_loss);
    if (supply_out != nullptr) *supply_out = supply;
    for (auto& member : members) member = supply->Wrap(std::move(member));
  }

  AlignedBuffer page(kPageBytes);
  if (page.data == nullptr) {
    *failure = {"ENOMEM", "out of memory"};
    return nullptr;
  }
  std::vector<format::Label> labels(members.size());
  std::vector<format::LabelState> states(members.size());
  std::vector<std::string> whys(members.size());
  auto read_labels = [&]() -> bool {
    for (size_t i = 0; i < members.size(); ++i) {
      int rc = ReadAt(members[i].get(), 0, page.data, kPageBytes);
      if (rc != 0) {
        *failure = IoFailure(rc, "cannot read", *members[i]);
        return false;
      }
      states[i] = format::DecodeLabel(page.data, &labels[i], &whys[i]);
    }
    return true;
  };
  if (!read_labels()) return nullptr;

  bool just_formatted = false;
  if (states[0] == format::LabelState::kBlank) {
    for (size_t i = 0; i < members.size(); ++i) {
      const std::string& path = members[i]->path();
      if (states[i] == format::LabelState::kValid) {
        *failure = {"EMISMATCH", path + " is member " + std::to_string(labels[i].member_index) + " of store " +
                                     HexString(labels[i].store_uuid, 16) + " but member 0 (" + members[0]->path() +
                                     ") is blank; refusing to format over it (wrong pool? to reuse it, zero its first 4 KiB)"};
        return nullptr;
      }
      if (states[i] != format::LabelState::kBlank) {
        *failure = {states[i] == format::LabelState::kCorrupt ? "ECORRUPT" : "ENOTBLANK",
                    path + " " + whys[i] + "; refusing to format over it"};
        return nullptr;
      }
    }
    if (!config.create && config.kind != BackendKind::kMemory) {
      *failure = {"ENOTFORMATTED", members[0]->path() + " holds no offpath store (pass create: true to format it)"};
      return nullptr;
    }
    uint32_t chunk_bytes = config.chunk_bytes != 0 ? config.chunk_bytes : kDefaultChunkBytes;
    if (!Format(members, known_zero, chunk_bytes, failure)) return nullptr;
    just_formatted = true;
    // Load what was just written, through the same checks as any open.
    if (!read_labels()) return nullptr;
  }
  if (states[0] != format::LabelState::kValid) {
    *failure = {states[0] == format::LabelState::kCorrupt ? "ECORRUPT" : "ENOTBLANK",
                members[0]->path() + " (member 0) " + whys[0]};
    return nullptr;
  }
  // Only member 0 holds the metadata; say so plainly when another member
  // was put first rather than reporting its (absent) control blocks.
  if (labels[0].member_index != 0) {
    *failure = {"EMISMATCH", members[0]->path() + " is member " + std::to_string(labels[0].member_index) + " of store " +
                                 HexString(labels[0].store_uuid, 16) + ", not member 0 (members reordered?)"};
    return nullptr;
  }
  if (config.chunk_bytes != 0 && config.chunk_bytes != labels[0].chunk_bytes) {
    *failure = {"EMISMATCH", "the pool on " + members[0]->path() + " was formatted with " +
                                 std::to_string(labels[0].chunk_bytes) + "-byte chunks, not " +
                                 std::to_string(config.chunk_bytes) + " (omit chunkBytes to use the pool's)"};
    return nullptr;
  }

  // The newer of the two valid control blocks wins.
  format::ControlBlock slots[2];
  std::string slot_why[2];
  bool valid[2];
  for (int slot = 0; slot < 2; ++slot)
    valid[slot] = ReadControlSlot(members[0].get(), slot, labels[0].store_uuid, &slots[slot], &slot_why[slot]);
  if (!valid[0] && !valid[1]) {
    *failure = {"ECORRUPT", "both control blocks on " + members[0]->path() + " are invalid (slot 0: " + slot_why[0] +
                                "; slot 1: " + slot_why[1] + ")"};
    return nullptr;
  }
  int newest = !valid[1] || (valid[0] && slots[0].sequence > slots[1].sequence) ? 0 : 1;
  format::ControlBlock& block = slots[newest];
  if (!CheckMembers(members, labels, states, whys, block, failure)) return nullptr;
  if (!CheckNamespaces(block, failure)) return nullptr;

  auto store = std::make_unique<StoreImpl>(std::move(members), std::move(block), newest, config.faults, supply);
  if (!store->LoadMap(just_formatted, failure)) return nullptr;
  return store;
}

}  // namespace

NamespaceSlot::NamespaceSlot() {
  pthread_rwlockattr_t attributes;
  pthread_rwlockattr_init(&attributes);
  // Deleting or resizing a namespace under constant I/O must not starve.
  pthread_rwlockattr_setkind_np(&attributes, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
  pthread_rwlock_init(&lock, &attributes);
  pthread_rwlockattr_destroy(&attributes);
}

NamespaceSlot::~NamespaceSlot() { pthread_rwlock_destroy(&lock); }

StoreImpl::StoreImpl(std::vector<std::unique_ptr<BackendMember>> members, format::ControlBlock control,
                     int newest_control_slot, const FaultConfig& faults, std::shared_ptr<PowerSupply> supply)
    : members_(std::move(members)),
      chunk_bytes_(control.chunk_bytes),
      pool_chunks_(control.pool_chunk_count),
      crc_seed_(format::MapCrcSeed(control.store_uuid)),
      control_(std::move(control)),
      newest_control_slot_(newest_control_slot),
      faults_(faults),
      supply_(std::move(supply)) {
  uint64_t first = 0;
  for (size_t i = 0; i < members_.size(); ++i) {
    member_first_chunk_.push_back(first);
    first += control_.members[i].chunk_count;
    volatile_cache_ = volatile_cache_ || members_[i]->volatile_cache();
  }
  member_unsynced_.reset(new std::atomic<bool>[members_.size()]);
  for (size_t i = 0; i < members_.size(); ++i) member_unsynced_[i].store(false);
  pins_.reset(new std::atomic<uint32_t>[pool_chunks_]);
  for (uint64_t i = 0; i < pool_chunks_; ++i) pins_[i].store(0, std::memory_order_relaxed);
  void* memory = nullptr;
  if (posix_memalign(&memory, kPageBytes, kPageBytes) == 0) page_buffer_ = static_cast<uint8_t*>(memory);
  memory = nullptr;
  if (posix_memalign(&memory, kPageBytes, format::kControlSlotBytes) == 0)
    control_buffer_ = static_cast<uint8_t*>(memory);
}

StoreImpl::~StoreImpl() {
  // A clean close leaves everything durable.
  Flush();
  for (auto& slot : slots_) delete slot.state.load();
  free(page_buffer_);
  free(control_buffer_);
}

StoreImpl::ChunkLocation StoreImpl::Locate(uint32_t pool_chunk) const {
  size_t index = members_.size() - 1;
  while (index > 0 && member_first_chunk_[index] > pool_chunk) --index;
  uint64_t offset = control_.members[index].data_start_bytes +
                    (pool_chunk - member_first_chunk_[index]) * uint64_t{chunk_bytes_};
  return {members_[index].get(), index, offset};
}

uint64_t StoreImpl::ChunksFor(uint64_t size_blocks, uint32_t block_bytes) const {
  return (size_blocks * block_bytes + chunk_bytes_ - 1) / chunk_bytes_;
}

bool StoreImpl::LoadMap(bool just_formatted, OpenFailure* failure) {
  std::lock_guard<std::mutex> lock(meta_mutex_);
  if (page_buffer_ == nullptr || control_buffer_ == nullptr) {
    *failure = {"ENOMEM", "out of memory"};
    return false;
  }
  BackendMember* metadata = members_[0].get();
  const uint32_t page_count = control_.map_page_count;
  entries_.assign(uint64_t{page_count} * kEntriesPerPage, {kTagClean, 0});
  pages_.assign(page_count, PageState{});
  uint64_t highest_sequence = control_.sequence;
  {
    AlignedBuffer batch(kMapBatchPages * 2 * kPageBytes);
    if (batch.data == nullptr) {
      *failure = {"ENOMEM", "out of memory"};
      return false;
    }
    std::vector<format::MapEntry> copy_entries(kEntriesPerPage);
    for (uint32_t first = 0; first < page_count; first += kMapBatchPages) {
      uint32_t count = std::min(kMapBatchPages, page_count - first);
      int rc = ReadAt(metadata, control_.map_offset_bytes + uint64_t{first} * 2 * kPageBytes, batch.data,
                      uint64_t{count} * 2 * kPageBytes);
      if (rc != 0) {
        *failure = IoFailure(rc, "cannot read the chunk map of", *metadata);
        return false;
      }
      for (uint32_t i = 0; i < count; ++i) {
        uint32_t page = first + i;
        PageState& state = pages_[page];
        for (int copy = 0; copy < 2; ++copy) {
          uint64_t sequence = 0;
          const uint8_t* bytes = batch.data + (uint64_t{i} * 2 + copy) * kPageBytes;
          if (!format::DecodeMapPage(bytes, page, crc_seed_, &sequence, copy_entries.data())) continue;
          if (sequence > state.sequence[state.newest] || state.sequence[state.newest] == 0) {
            state.newest = static_cast<uint8_t>(copy);
            std::copy(copy_entries.begin(), copy_entries.end(), entries_.begin() + uint64_t{page} * kEntriesPerPage);
          }
          state.sequence[copy] = sequence;
          highest_sequence = std::max(highest_sequence, sequence);
        }
        if (state.sequence[0] == 0 && state.sequence[1] == 0) {
          *failure = {"ECORRUPT", "chunk map page " + std::to_string(page) + " on " + metadata->path() +
                                      " is invalid in both copies"};
          return false;
        }
      }
    }
  }

  // Create the namespaces and give each its chunks.
  std::unordered_map<uint32_t, NamespaceState*> by_tag;
  for (const auto& [nsid, record] : control_.namespaces) {
    auto* state = new NamespaceState(nsid, record.tag, record.block_bytes, record.size_blocks, pool_chunks_);
    slots_[nsid - 1].state.store(state);
    by_tag[record.tag] = state;
  }
  std::set<uint32_t> repaired_pages;
  auto reclaim = [&](uint32_t chunk) {
    entries_[chunk] = {kTagDirty, 0};
    repaired_pages.insert(chunk / kEntriesPerPage);
  };
  for (uint32_t chunk = 0; chunk < pool_chunks_; ++chunk) {
    const format::MapEntry entry = entries_[chunk];
    if (entry.tag == kTagClean || entry.tag == kTagDirty) continue;
    auto owner = by_tag.find(entry.tag);
    // An owner that no longer exists (deleted) or no longer reaches that far
    // (shrunk): a crash came between the commit and the map rewrite.
    if (owner == by_tag.end() ||
        entry.logical_chunk >= ChunksFor(owner->second->size_blocks.load(), owner->second->block_bytes)) {
      reclaim(chunk);
      continue;
    }
    NamespaceState* state = owner->second;
    uint32_t previous = state->map.Load(entry.logical_chunk);
    if (previous != 0) {
      // Two chunks claim one logical chunk: only possible after a power loss
      // kept a stale page copy. The later write (higher page sequence) wins.
      uint32_t other = previous - 1;
      const PageState& mine = pages_[chunk / kEntriesPerPage];
      const PageState& theirs = pages_[other / kEntriesPerPage];
      if (mine.sequence[mine.newest] <= theirs.sequence[theirs.newest]) {
        reclaim(chunk);
        continue;
      }
      reclaim(other);
      state->mapped_chunks.fetch_sub(1);
    }
    state->map.Set(entry.logical_chunk, chunk + 1);
    state->mapped_chunks.fetch_add(1);
  }
  // A chunk whose entry says "clean" may still hold data: a power loss can
  // keep a map page's older (durable) copy, from before the chunk was
  // claimed, while the data written after the claim reached the disk. So
  // free chunks are re-zeroed here, where it is cheap (punching holes over
  // what are mostly holes already); where it is not, they count as dirty
  // and are zeroed, durably, when reused. A pool formatted just now is
  // known to be zero.
  std::vector<bool> zeroed(pool_chunks_, just_formatted);
  if (!just_formatted) {
    uint32_t chunk = 0;
    while (chunk < pool_chunks_) {
      if (entries_[chunk].tag != kTagClean) {
        ++chunk;
        continue;
      }
      size_t member = Locate(chunk).member_index;
      uint32_t end = chunk + 1;
      while (end < pool_chunks_ && entries_[end].tag == kTagClean && Locate(end).member_index == member) ++end;
      emu::MemberWrite zero;
      zero.offset_bytes = Locate(chunk).offset_bytes;
      zero.length_bytes = uint64_t{end - chunk} * chunk_bytes_;
      zero.zero_only_if_cheap = true;
      bool ok = MemberWrite(member, zero) == 0;
      for (uint32_t i = chunk; i < end; ++i) zeroed[i] = ok;
      chunk = end;
    }
  }
  // Free lists, lowest chunk on top so allocation fills the pool in order.
  for (uint32_t chunk = static_cast<uint32_t>(pool_chunks_); chunk-- > 0;) {
    if (entries_[chunk].tag == kTagClean && zeroed[chunk])
      clean_free_.push_back(chunk);
    else if (entries_[chunk].tag == kTagClean || entries_[chunk].tag == kTagDirty)
      dirty_free_.push_back(chunk);
  }
  free_chunks_.store(clean_free_.size() + dirty_free_.size());

  // Everything read counts as durable only once it is: after kill -9 some
  // of it may still be in the page cache only.
  next_sequence_ = highest_sequence + 1;
  written_sequence_ = highest_sequence;
  durable_sequence_ = 0;
  if (SyncAllLocked() != 0) {
    *failure = {"EIO", "cannot sync the pool members"};
    return false;
  }
  if (!repaired_pages.empty()) {
    if (WriteMapPagesLocked(repaired_pages) != 0 || SyncMetadataLocked() != 0) {
      *failure = {"EIO", "cannot write the repaired chunk map to " + metadata->path()};
      return false;
    }
  }
  return true;
}

std::unique_ptr<Store> Store::Open(const StoreConfig& config, std::string* error, std::string* error_code) {
  return OpenStoreForTest(config, {}, nullptr, error, error_code);
}

std::unique_ptr<Store> OpenStoreForTest(const StoreConfig& config, std::vector<std::unique_ptr<BackendMember>> image,
                                        std::shared_ptr<PowerSupply>* supply, std::string* error,
                                        std::string* error_code) {
  OpenFailure failure;
  std::unique_ptr<Store> store = OpenStore(config, std::move(image), supply, &failure);
  if (!store) {
    if (error != nullptr) *error = failure.message;
    if (error_code != nullptr) *error_code = failure.code;
  }
  return store;
}

}  // namespace offpath::emu
