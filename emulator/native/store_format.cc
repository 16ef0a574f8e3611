#include "store_format.h"

#include <algorithm>
#include <cstring>

#include "crc32c.h"

namespace offpath::emu::format {
namespace {

constexpr char kLabelMagic[8] = {'o', 'f', 'f', 'p', 'a', 't', 'h', 'L'};
constexpr char kControlMagic[8] = {'o', 'f', 'f', 'p', 'a', 't', 'h', 'C'};
constexpr uint32_t kMapMagic = 0x4d50466fu;  // "oFPM" read as little-endian bytes

// Label fields (offsets in its 4 KiB page).
constexpr size_t kLabelCrcOffset = 12;
// Control header fields.
constexpr size_t kControlCrcOffset = 12;
constexpr size_t kControlHeaderBytes = 104;
constexpr size_t kMemberRecordBytes = 40;
constexpr size_t kNamespaceFixedBytes = 64;
constexpr size_t kLimitRecordBytes = 24;
// Map page header fields.
constexpr size_t kMapCrcOffset = 16;

// Bounds-checked little-endian writer and reader over a byte buffer.
class Writer {
 public:
  explicit Writer(uint8_t* data) : data_(data) {}
  void U16(uint16_t value) { Put(&value, 2); }
  void U32(uint32_t value) { Put(&value, 4); }
  void U64(uint64_t value) { Put(&value, 8); }
  void Bytes(const void* bytes, size_t length) { Put(bytes, length); }
  void Skip(size_t length) { offset_ += length; }
  void AlignTo(size_t alignment) { offset_ = (offset_ + alignment - 1) / alignment * alignment; }
  size_t offset() const { return offset_; }

 private:
  void Put(const void* bytes, size_t length) {
    if (data_ != nullptr) memcpy(data_ + offset_, bytes, length);
    offset_ += length;
  }
  uint8_t* data_;  // nullptr: only measure
  size_t offset_ = 0;
};

class Reader {
 public:
  Reader(const uint8_t* data, size_t length) : data_(data), length_(length) {}
  bool U16(uint16_t* value) { return Get(value, 2); }
  bool U32(uint32_t* value) { return Get(value, 4); }
  bool U64(uint64_t* value) { return Get(value, 8); }
  bool Bytes(void* bytes, size_t length) { return Get(bytes, length); }
  bool Skip(size_t length) {
    if (length > length_ - offset_) return false;
    offset_ += length;
    return true;
  }
  bool AlignTo(size_t alignment) {
    size_t aligned = (offset_ + alignment - 1) / alignment * alignment;
    return Skip(aligned - offset_);
  }
  void Seek(size_t offset) { offset_ = offset; }

 private:
  bool Get(void* bytes, size_t length) {
    if (length > length_ - offset_) return false;
    memcpy(bytes, data_ + offset_, length);
    offset_ += length;
    return true;
  }
  const uint8_t* data_;
  size_t length_;
  size_t offset_ = 0;
};

// CRC of a block with its 4-byte CRC field counted as zero.
uint32_t CrcSkippingField(uint32_t seed, const uint8_t* data, size_t length, size_t field_offset) {
  static const uint8_t kZero[4] = {};
  uint32_t crc = Crc32c(seed, data, field_offset);
  crc = Crc32c(crc, kZero, 4);
  return Crc32c(crc, data + field_offset + 4, length - field_offset - 4);
}

uint32_t LoadU32(const uint8_t* at) {
  uint32_t value;
  memcpy(&value, at, 4);
  return value;
}

bool AllZero(const uint8_t* data, size_t length) {
  for (size_t i = 0; i < length; ++i) {
    if (data[i] != 0) return false;
  }
  return true;
}

size_t NamespaceRecordBytes(const NamespaceRecord& record) {
  return (kNamespaceFixedBytes + 2 * record.attached.size() + 7) / 8 * 8;
}

}  // namespace

void EncodeLabel(const Label& label, uint8_t* page) {
  memset(page, 0, kLabelBytes);
  Writer out(page);
  out.Bytes(kLabelMagic, 8);
  out.U32(kVersion);
  out.U32(0);  // CRC, filled below
  out.Bytes(label.store_uuid, 16);
  out.Bytes(label.member_uuid, 16);
  out.U32(label.member_index);
  out.U32(label.member_count);
  out.U64(label.size_bytes);
  out.U32(label.chunk_bytes);
  uint32_t crc = CrcSkippingField(0, page, kLabelBytes, kLabelCrcOffset);
  memcpy(page + kLabelCrcOffset, &crc, 4);
}

LabelState DecodeLabel(const uint8_t* page, Label* label, std::string* why) {
  if (AllZero(page, kLabelBytes)) return LabelState::kBlank;
  if (memcmp(page, kLabelMagic, 8) != 0) {
    *why = "holds data that is not an offpath store label";
    return LabelState::kForeign;
  }
  if (CrcSkippingField(0, page, kLabelBytes, kLabelCrcOffset) != LoadU32(page + kLabelCrcOffset)) {
    *why = "store label checksum mismatch (corrupted label)";
    return LabelState::kCorrupt;
  }
  Reader in(page, kLabelBytes);
  uint32_t version = 0;
  in.Skip(8);
  in.U32(&version);
  if (version != kVersion) {
    *why = "store label has format version " + std::to_string(version) + ", this build reads " +
           std::to_string(kVersion);
    return LabelState::kCorrupt;
  }
  in.Skip(4);
  in.Bytes(label->store_uuid, 16);
  in.Bytes(label->member_uuid, 16);
  in.U32(&label->member_index);
  in.U32(&label->member_count);
  in.U64(&label->size_bytes);
  in.U32(&label->chunk_bytes);
  return LabelState::kValid;
}

size_t EncodedControlBytes(const ControlBlock& block) {
  size_t total = kControlHeaderBytes + kMemberRecordBytes * block.members.size();
  for (const auto& [nsid, record] : block.namespaces) total += NamespaceRecordBytes(record);
  total += kLimitRecordBytes * block.limits.size();
  return (total + kPageBytes - 1) / kPageBytes * kPageBytes;
}

void EncodeControl(const ControlBlock& block, uint8_t* buffer) {
  size_t total = EncodedControlBytes(block);
  memset(buffer, 0, total);
  Writer out(buffer);
  out.Bytes(kControlMagic, 8);
  out.U32(kVersion);
  out.U32(0);  // CRC, filled below
  out.U64(block.sequence);
  out.U32(static_cast<uint32_t>(total));
  out.U32(0);
  out.Bytes(block.store_uuid, 16);
  out.U32(block.chunk_bytes);
  out.U32(static_cast<uint32_t>(block.members.size()));
  out.U64(block.map_offset_bytes);
  out.U32(block.map_page_count);
  out.U32(block.control_slot_bytes);
  out.U64(block.pool_chunk_count);
  out.U32(block.next_tag);
  out.U32(static_cast<uint32_t>(block.namespaces.size()));
  out.U32(static_cast<uint32_t>(block.limits.size()));
  out.U32(0);
  out.Skip(kControlHeaderBytes - out.offset());
  for (const auto& member : block.members) {
    out.Bytes(member.uuid, 16);
    out.U64(member.size_bytes);
    out.U64(member.data_start_bytes);
    out.U64(member.chunk_count);
  }
  for (const auto& [nsid, record] : block.namespaces) {
    out.U32(record.nsid);
    out.U32(record.tag);
    out.U64(record.size_blocks);
    out.U32(record.block_bytes);
    out.U16(static_cast<uint16_t>(record.attached.size()));
    out.U16(0);
    out.Bytes(record.uuid, 16);
    out.Bytes(record.nguid, 16);
    out.Skip(8);  // reserved
    for (uint16_t cntlid : record.attached) out.U16(cntlid);
    out.AlignTo(8);
  }
  for (const auto& [cntlid, limit] : block.limits) {
    out.U16(limit.cntlid);
    out.Skip(6);
    out.U64(limit.iops);
    out.U64(limit.bytes_per_second);
  }
  uint32_t crc = CrcSkippingField(0, buffer, total, kControlCrcOffset);
  memcpy(buffer + kControlCrcOffset, &crc, 4);
}

size_t ControlClaimedBytes(const uint8_t* first_page) {
  if (memcmp(first_page, kControlMagic, 8) != 0) return 0;
  uint32_t total = LoadU32(first_page + 24);
  if (total < kPageBytes || total > kControlSlotBytes || total % kPageBytes != 0) return 0;
  return total;
}

bool DecodeControl(const uint8_t* buffer, size_t length_bytes, ControlBlock* block,
                   std::string* why) {
  size_t total = length_bytes >= kPageBytes ? ControlClaimedBytes(buffer) : 0;
  if (total == 0 || total > length_bytes) {
    *why = "no control block header";
    return false;
  }
  if (CrcSkippingField(0, buffer, total, kControlCrcOffset) != LoadU32(buffer + kControlCrcOffset)) {
    *why = "control block checksum mismatch";
    return false;
  }
  Reader in(buffer, total);
  uint32_t version = 0, claimed = 0, member_count = 0, namespace_count = 0, limit_count = 0;
  in.Skip(8);
  in.U32(&version);
  if (version != kVersion) {
    *why = "control block has format version " + std::to_string(version);
    return false;
  }
  in.Skip(4);
  in.U64(&block->sequence);
  in.U32(&claimed);
  in.Skip(4);
  in.Bytes(block->store_uuid, 16);
  in.U32(&block->chunk_bytes);
  in.U32(&member_count);
  in.U64(&block->map_offset_bytes);
  in.U32(&block->map_page_count);
  in.U32(&block->control_slot_bytes);
  in.U64(&block->pool_chunk_count);
  in.U32(&block->next_tag);
  in.U32(&namespace_count);
  in.U32(&limit_count);
  in.Seek(kControlHeaderBytes);
  if (member_count == 0 || member_count > kMaxMembers || namespace_count > kMaxNamespaces ||
      limit_count > kMaxLimitEntries) {
    *why = "control block counts out of range";
    return false;
  }
  bool ok = true;
  block->members.resize(member_count);
  for (auto& member : block->members) {
    ok = ok && in.Bytes(member.uuid, 16) && in.U64(&member.size_bytes) &&
         in.U64(&member.data_start_bytes) && in.U64(&member.chunk_count);
  }
  block->namespaces.clear();
  for (uint32_t i = 0; ok && i < namespace_count; ++i) {
    NamespaceRecord record{};
    uint16_t attach_count = 0, reserved16 = 0;
    ok = in.U32(&record.nsid) && in.U32(&record.tag) && in.U64(&record.size_blocks) &&
         in.U32(&record.block_bytes) && in.U16(&attach_count) && in.U16(&reserved16) &&
         in.Bytes(record.uuid, 16) && in.Bytes(record.nguid, 16) && in.Skip(8);
    if (!ok || attach_count > kMaxAttachmentsPerNamespace) {
      ok = false;
      break;
    }
    record.attached.resize(attach_count);
    for (auto& cntlid : record.attached) ok = ok && in.U16(&cntlid);
    ok = ok && in.AlignTo(8);
    if (ok) block->namespaces[record.nsid] = std::move(record);
  }
  block->limits.clear();
  for (uint32_t i = 0; ok && i < limit_count; ++i) {
    ControllerLimits limit{};
    ok = in.U16(&limit.cntlid) && in.Skip(6) && in.U64(&limit.iops) && in.U64(&limit.bytes_per_second);
    if (ok) block->limits[limit.cntlid] = limit;
  }
  if (!ok || block->namespaces.size() != namespace_count || block->limits.size() != limit_count) {
    *why = "control block records are truncated or duplicated";
    return false;
  }
  return true;
}

uint32_t MapCrcSeed(const uint8_t store_uuid[16]) { return Crc32c(0, store_uuid, 16); }

void EncodeMapPage(uint32_t page_index, uint64_t sequence, uint32_t crc_seed,
                   const MapEntry* entries, uint8_t* page) {
  memset(page, 0, kMapHeaderBytes);
  Writer out(page);
  out.U32(kMapMagic);
  out.U32(page_index);
  out.U64(sequence);
  out.U32(0);  // CRC, filled below
  out.Skip(kMapHeaderBytes - out.offset());
  for (uint32_t i = 0; i < kEntriesPerPage; ++i) {
    out.U32(entries[i].tag);
    out.U32(entries[i].logical_chunk);
  }
  memset(page + out.offset(), 0, kPageBytes - out.offset());
  uint32_t crc = CrcSkippingField(crc_seed, page, kPageBytes, kMapCrcOffset);
  memcpy(page + kMapCrcOffset, &crc, 4);
}

bool DecodeMapPage(const uint8_t* page, uint32_t page_index, uint32_t crc_seed,
                   uint64_t* sequence, MapEntry* entries) {
  if (LoadU32(page) != kMapMagic || LoadU32(page + 4) != page_index) return false;
  if (CrcSkippingField(crc_seed, page, kPageBytes, kMapCrcOffset) != LoadU32(page + kMapCrcOffset))
    return false;
  memcpy(sequence, page + 8, 8);
  Reader in(page + kMapHeaderBytes, kPageBytes - kMapHeaderBytes);
  for (uint32_t i = 0; i < kEntriesPerPage; ++i) {
    in.U32(&entries[i].tag);
    in.U32(&entries[i].logical_chunk);
  }
  return true;
}

bool ComputeGeometry(const std::vector<uint64_t>& member_sizes, uint32_t chunk_bytes,
                     ControlBlock* block, std::string* why) {
  block->chunk_bytes = chunk_bytes;
  block->control_slot_bytes = kControlSlotBytes;
  block->map_offset_bytes = kControlOffsetBytes + 2ull * kControlSlotBytes;
  const uint64_t alignment = std::min<uint64_t>(chunk_bytes, 1u << 20);
  auto align_up = [alignment](uint64_t value) { return (value + alignment - 1) / alignment * alignment; };
  // Size the map for every chunk the members could hold were no space taken
  // by metadata; the few spare entries cost less than iterating to a fixpoint.
  uint64_t upper_bound_chunks = 0;
  for (uint64_t size : member_sizes) upper_bound_chunks += size / chunk_bytes;
  uint64_t pages = (upper_bound_chunks + kEntriesPerPage - 1) / kEntriesPerPage;
  if (pages == 0) pages = 1;
  if (pages > 0xffffffffu) {
    *why = "pool too large";
    return false;
  }
  block->map_page_count = static_cast<uint32_t>(pages);
  uint64_t metadata_end = block->map_offset_bytes + pages * 2 * kPageBytes;
  block->members.clear();
  block->pool_chunk_count = 0;
  for (size_t i = 0; i < member_sizes.size(); ++i) {
    MemberRecord member{};
    member.size_bytes = member_sizes[i];
    member.data_start_bytes = align_up(i == 0 ? metadata_end : kLabelBytes);
    member.chunk_count = member.size_bytes > member.data_start_bytes
                             ? (member.size_bytes - member.data_start_bytes) / chunk_bytes
                             : 0;
    if (member.chunk_count == 0) {
      *why = "pool member " + std::to_string(i) + " (" + std::to_string(member.size_bytes) +
             " bytes) holds no whole chunk after its " + std::to_string(member.data_start_bytes) +
             " bytes of " + (i == 0 ? "metadata" : "label") + "; make it larger";
      return false;
    }
    block->pool_chunk_count += member.chunk_count;
    block->members.push_back(member);
  }
  // Forward maps store chunk index + 1 in 32 bits.
  if (block->pool_chunk_count >= 0xfffffff0ull) {
    *why = "pool has too many chunks; use a larger chunkBytes";
    return false;
  }
  return true;
}

}  // namespace offpath::emu::format

namespace offpath::emu::format {
// The largest possible control block must fit one slot.
static_assert(104 + 40 * kMaxMembers + kMaxNamespaces * ((64 + 2 * kMaxAttachmentsPerNamespace + 7) / 8 * 8) +
                  24 * kMaxLimitEntries <=
              kControlSlotBytes);
}  // namespace offpath::emu::format
