// The store's on-disk format: member labels, the two control-block slots and
// the chunk map pages, with their encoders and checking decoders. No I/O
// here; store_metadata.cc decides what is written where and when.
//
// All integers are little-endian (the runtime supports little-endian hosts
// only, see nvme_spec.h). docs/emulator-store.md describes the layout in
// prose; keep the two in step.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "store.h"

namespace offpath::emu::format {

constexpr uint32_t kVersion = 1;
constexpr uint64_t kPageBytes = 4096;

// Member layout: a 4 KiB label at offset 0 of every member; on member 0 the
// two control slots follow, then the map pages (two copies of each page,
// interleaved), then data chunks. Other members' chunks start after the label
// (rounded up so chunks stay aligned to min(chunk, 1 MiB)).
constexpr uint64_t kLabelBytes = 4096;
constexpr uint64_t kControlOffsetBytes = 4096;
constexpr uint32_t kControlSlotBytes = 1u << 20;

// Map entries name the owner of one pool chunk: a namespace's tag (its
// creation generation, never reused) and the logical chunk index inside it.
constexpr uint32_t kTagClean = 0;             // free and known to read as zeroes
constexpr uint32_t kTagDirty = 0xffffffffu;   // free, may hold old data
constexpr uint32_t kMapHeaderBytes = 32;
constexpr uint32_t kEntriesPerPage = (kPageBytes - kMapHeaderBytes) / 8;  // 508

// Bounds that keep the largest control block inside one slot.
constexpr uint32_t kMaxMembers = 64;
constexpr uint32_t kMaxAttachmentsPerNamespace = 256;
constexpr uint32_t kMaxLimitEntries = 4096;

struct MapEntry {
  uint32_t tag;
  uint32_t logical_chunk;
};

struct Label {
  uint8_t store_uuid[16];
  uint8_t member_uuid[16];
  uint32_t member_index;
  uint32_t member_count;
  uint64_t size_bytes;
  uint32_t chunk_bytes;
};

enum class LabelState {
  kBlank,    // all zeroes: never formatted
  kValid,
  kForeign,  // not zero and not an offpath label: someone else's data
  kCorrupt,  // an offpath label whose checksum or fields are wrong
};

void EncodeLabel(const Label& label, uint8_t* page);
LabelState DecodeLabel(const uint8_t* page, Label* label, std::string* why);

struct MemberRecord {
  uint8_t uuid[16];
  uint64_t size_bytes;
  uint64_t data_start_bytes;
  uint64_t chunk_count;
};

struct NamespaceRecord {
  uint32_t nsid;
  uint32_t tag;
  uint64_t size_blocks;
  uint32_t block_bytes;
  uint8_t uuid[16];
  uint8_t nguid[16];
  std::vector<uint16_t> attached;  // sorted controller ids
};

// Everything but the chunk map: the pool's geometry and the namespace and
// QoS tables. Rewritten whole (it is small) on every namespace change.
struct ControlBlock {
  uint64_t sequence = 0;
  uint8_t store_uuid[16] = {};
  uint32_t chunk_bytes = 0;
  uint64_t map_offset_bytes = 0;
  uint32_t map_page_count = 0;
  uint32_t control_slot_bytes = kControlSlotBytes;
  uint64_t pool_chunk_count = 0;
  uint32_t next_tag = 1;
  std::vector<MemberRecord> members;
  std::map<uint32_t, NamespaceRecord> namespaces;
  std::map<uint16_t, ControllerLimits> limits;
};

// Bytes the encoded block needs, rounded up to whole pages.
size_t EncodedControlBytes(const ControlBlock& block);
// Encodes into buffer (at least EncodedControlBytes long, zero padded).
void EncodeControl(const ControlBlock& block, uint8_t* buffer);
// The total length a slot's first page claims, or 0 if it is not a plausible
// control block header (so the caller knows how much more to read).
size_t ControlClaimedBytes(const uint8_t* first_page);
bool DecodeControl(const uint8_t* buffer, size_t length_bytes, ControlBlock* block,
                   std::string* why);

// Map pages carry their index and a sequence number; their CRC is seeded
// with the store's uuid so a page left behind by another store never
// validates.
uint32_t MapCrcSeed(const uint8_t store_uuid[16]);
void EncodeMapPage(uint32_t page_index, uint64_t sequence, uint32_t crc_seed,
                   const MapEntry* entries, uint8_t* page);
bool DecodeMapPage(const uint8_t* page, uint32_t page_index, uint32_t crc_seed,
                   uint64_t* sequence, MapEntry* entries);

// The pool's geometry for members of the given sizes. Fails (with why) if a
// member holds no whole chunk or the pool is too large to address.
bool ComputeGeometry(const std::vector<uint64_t>& member_sizes, uint32_t chunk_bytes,
                     ControlBlock* block, std::string* why);

}  // namespace offpath::emu::format
