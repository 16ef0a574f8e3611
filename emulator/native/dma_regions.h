// The emulator's IOMMU: the memory regions one controller's host registered,
// keyed by IOVA. Every address in a command, a PRP list, an SGL or a queue
// base is translated here; anything outside a registered region is a DMA
// fault for the command (or CSTS.CFS for queue memory), never a host pointer.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace offpath::emu {

struct DmaRegion {
  uint64_t iova;
  uint64_t length_bytes;
  uint8_t* host;  // our own mapping of the host's memfd
};

class DmaRegionTable {
 public:
  DmaRegionTable() = default;
  DmaRegionTable(const DmaRegionTable&) = delete;
  DmaRegionTable& operator=(const DmaRegionTable&) = delete;
  ~DmaRegionTable() { Clear(); }

  // Maps the host's memfd and makes [iova, iova + length) translate to it.
  // The memfd must be sealed against shrinking (F_SEAL_SHRINK): otherwise the
  // host could truncate it under us and our next access would be SIGBUS.
  // Returns an errno-style code name ("EINVAL", ...) and sets *error, or "".
  std::string Add(uint64_t iova, uint64_t length_bytes, int fd, std::string* error);
  bool Remove(uint64_t iova);
  void Clear();
  size_t size() const { return regions_.size(); }
  uint64_t total_bytes() const;

  // The region containing iova, or nullptr.
  const DmaRegion* Find(uint64_t iova) const;

  // The host pointer for [iova, iova + length) if it lies inside one region.
  uint8_t* Translate(uint64_t iova, uint64_t length_bytes) const {
    // Most commands hit the region of the previous command: check it first.
    if (last_ < regions_.size()) {
      const DmaRegion& r = regions_[last_];
      if (iova >= r.iova && length_bytes <= r.length_bytes && iova - r.iova <= r.length_bytes - length_bytes)
        return r.host + (iova - r.iova);
    }
    return TranslateSlow(iova, length_bytes);
  }

 private:
  uint8_t* TranslateSlow(uint64_t iova, uint64_t length_bytes) const;
  std::vector<DmaRegion> regions_;  // sorted by iova, non-overlapping
  mutable size_t last_ = 0;
};

}  // namespace offpath::emu
