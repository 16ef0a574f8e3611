#include "data_pointer.h"

#include <cstring>

namespace offpath::emu {

namespace {

uint64_t Load64(const uint8_t* bytes) {
  uint64_t value;
  memcpy(&value, bytes, sizeof value);
  return value;
}

uint32_t Load32(const uint8_t* bytes) {
  uint32_t value;
  memcpy(&value, bytes, sizeof value);
  return value;
}

// Appends [iova, iova + length) to the transfer, merging with the previous
// segment when host memory is contiguous (the common case for large buffers).
Status Append(const DmaRegionTable& regions, uint64_t iova, uint64_t length_bytes, Transfer* transfer) {
  uint8_t* host = regions.Translate(iova, length_bytes);
  if (host == nullptr) return status::kDmaFault;
  if (transfer->count > 0) {
    Segment& last = transfer->segments[transfer->count - 1];
    if (last.data + last.length_bytes == host) {
      last.length_bytes += length_bytes;
      transfer->length_bytes += length_bytes;
      return status::kSuccess;
    }
  }
  if (transfer->count == kMaxSegments) return status::kInvalidField;
  transfer->segments[transfer->count++] = Segment{host, static_cast<size_t>(length_bytes)};
  transfer->length_bytes += length_bytes;
  return status::kSuccess;
}

}  // namespace

Status MapPrp(const DmaRegionTable& regions, uint64_t prp1, uint64_t prp2, uint64_t length_bytes,
              Transfer* transfer) {
  transfer->count = 0;
  transfer->length_bytes = 0;
  if (length_bytes == 0) return status::kSuccess;
  if (prp1 & 3) return status::kPrpOffsetInvalid;
  uint64_t first = kPageBytes - (prp1 % kPageBytes);
  if (first > length_bytes) first = length_bytes;
  Status status = Append(regions, prp1, first, transfer);
  if (status != status::kSuccess) return status;
  uint64_t remaining = length_bytes - first;
  if (remaining == 0) return status::kSuccess;
  if (remaining <= kPageBytes) {
    // PRP2 is the second (and last) data page: it must start on a page.
    if (prp2 % kPageBytes != 0) return status::kPrpOffsetInvalid;
    return Append(regions, prp2, remaining, transfer);
  }
  // PRP2 points at a list; the list may start mid-page (dword aligned).
  if (prp2 & 7) return status::kPrpOffsetInvalid;
  uint64_t list = prp2;
  constexpr uint64_t kEntriesPerPage = kPageBytes / 8;
  // A hostile chain could point back at itself; a legal one needs at most
  // one list page per kEntriesPerPage - 1 data pages, plus the first.
  uint64_t list_pages_left = remaining / kPageBytes / (kEntriesPerPage - 1) + 2;
  while (remaining > 0) {
    if (list_pages_left-- == 0) return status::kPrpOffsetInvalid;
    uint64_t entries_in_page = kEntriesPerPage - (list % kPageBytes) / 8;
    const uint8_t* page = regions.Translate(list, entries_in_page * 8);
    if (page == nullptr) return status::kDmaFault;
    for (uint64_t i = 0; i < entries_in_page && remaining > 0; i++) {
      uint64_t entry = Load64(page + i * 8);
      bool last_slot = i == entries_in_page - 1;
      if (last_slot && remaining > kPageBytes) {
        // More data than one page remains: this slot chains to the next list.
        if (entry & 7) return status::kPrpOffsetInvalid;
        list = entry;
        break;
      }
      if (entry % kPageBytes != 0) return status::kPrpOffsetInvalid;
      uint64_t piece = remaining < kPageBytes ? remaining : kPageBytes;
      status = Append(regions, entry, piece, transfer);
      if (status != status::kSuccess) return status;
      remaining -= piece;
    }
  }
  return status::kSuccess;
}

namespace {

constexpr uint8_t kSglDataBlock = 0x0;
constexpr uint8_t kSglBitBucket = 0x1;
constexpr uint8_t kSglSegment = 0x2;
constexpr uint8_t kSglLastSegment = 0x3;
constexpr size_t kSglDescriptorBytes = 16;

}  // namespace

Status MapSgl(const DmaRegionTable& regions, const uint8_t* sgl1, uint64_t length_bytes,
              Transfer* transfer) {
  transfer->count = 0;
  transfer->length_bytes = 0;
  uint64_t described = 0;
  uint32_t descriptors = 0;
  // Process one descriptor: data blocks add memory, bit buckets skip data
  // (only meaningful for reads; we reject them to keep transfers exact).
  auto data = [&](const uint8_t* d) -> Status {
    uint8_t type = d[15] >> 4;
    uint8_t subtype = d[15] & 0xf;
    uint64_t address = Load64(d);
    uint32_t length = Load32(d + 8);
    if (type == kSglBitBucket) return status::kSglDescriptorTypeInvalid;
    if (type != kSglDataBlock || subtype != 0) return status::kSglDescriptorTypeInvalid;
    if (++descriptors > kMaxSglDescriptors) return status::kInvalidNumberOfSglDescriptors;
    if (length == 0) return status::kSuccess;
    if (described + length > length_bytes) return status::kDataSglLengthInvalid;
    described += length;
    return Append(regions, address, length, transfer);
  };

  uint8_t type = sgl1[15] >> 4;
  if (type == kSglDataBlock) {
    Status status = data(sgl1);
    if (status != status::kSuccess) return status;
  } else if (type == kSglSegment || type == kSglLastSegment) {
    const uint8_t* pointer = sgl1;
    for (;;) {
      uint8_t pointer_type = pointer[15] >> 4;
      uint64_t address = Load64(pointer);
      uint32_t length = Load32(pointer + 8);
      if ((pointer[15] & 0xf) != 0) return status::kSglDescriptorTypeInvalid;
      if (length == 0 || length % kSglDescriptorBytes != 0) return status::kInvalidSglSegmentDescriptor;
      uint32_t count = length / kSglDescriptorBytes;
      if (count > kMaxSglDescriptors) return status::kInvalidNumberOfSglDescriptors;
      const uint8_t* segment = regions.Translate(address, length);
      if (segment == nullptr) return status::kDmaFault;
      const uint8_t* next = nullptr;
      for (uint32_t i = 0; i < count; i++) {
        const uint8_t* d = segment + i * kSglDescriptorBytes;
        uint8_t t = d[15] >> 4;
        if (t == kSglSegment || t == kSglLastSegment) {
          // Only a Segment's last descriptor may point further, and a Last
          // Segment may not point anywhere.
          if (i != count - 1 || pointer_type == kSglLastSegment) return status::kInvalidSglSegmentDescriptor;
          next = d;
          break;
        }
        Status status = data(d);
        if (status != status::kSuccess) return status;
      }
      if (next == nullptr) {
        if (pointer_type == kSglSegment) return status::kInvalidSglSegmentDescriptor;
        break;
      }
      if (++descriptors > kMaxSglDescriptors) return status::kInvalidNumberOfSglDescriptors;
      pointer = next;
    }
  } else {
    return status::kSglDescriptorTypeInvalid;
  }
  if (described != length_bytes) return status::kDataSglLengthInvalid;
  return status::kSuccess;
}

void CopyFromTransfer(const Transfer& transfer, uint8_t* destination, uint64_t length_bytes) {
  uint64_t done = 0;
  for (uint32_t i = 0; i < transfer.count && done < length_bytes; i++) {
    uint64_t piece = transfer.segments[i].length_bytes;
    if (piece > length_bytes - done) piece = length_bytes - done;
    memcpy(destination + done, transfer.segments[i].data, piece);
    done += piece;
  }
}

void CopyToTransfer(const Transfer& transfer, const uint8_t* source, uint64_t length_bytes) {
  uint64_t done = 0;
  for (uint32_t i = 0; i < transfer.count && done < length_bytes; i++) {
    uint64_t piece = transfer.segments[i].length_bytes;
    if (piece > length_bytes - done) piece = length_bytes - done;
    memcpy(transfer.segments[i].data, source + done, piece);
    done += piece;
  }
}

}  // namespace offpath::emu
