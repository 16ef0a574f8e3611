#include "dma_regions.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace offpath::emu {

namespace {
constexpr uint64_t kPageBytes = 4096;
constexpr uint64_t kMaxRegionBytes = uint64_t{64} << 30;
constexpr size_t kMaxRegions = 256;
}  // namespace

std::string DmaRegionTable::Add(uint64_t iova, uint64_t length_bytes, int fd, std::string* error) {
  if (iova % kPageBytes != 0 || length_bytes % kPageBytes != 0 || length_bytes == 0 ||
      length_bytes > kMaxRegionBytes || iova + length_bytes < iova) {
    *error = "a DMA region needs a page-aligned IOVA and a whole number of pages (at most 64 GiB)";
    return "EINVAL";
  }
  if (regions_.size() >= kMaxRegions) {
    *error = "too many DMA regions (256)";
    return "ENOSPC";
  }
  for (const DmaRegion& r : regions_) {
    if (iova < r.iova + r.length_bytes && r.iova < iova + length_bytes) {
      *error = "the IOVA range overlaps a registered region";
      return "EEXIST";
    }
  }
  int seals = fcntl(fd, F_GET_SEALS);
  if (seals < 0 || (seals & F_SEAL_SHRINK) == 0) {
    *error = "DMA memory must be a memfd sealed with F_SEAL_SHRINK";
    return "EPERM";
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || static_cast<uint64_t>(st.st_size) < length_bytes) {
    *error = "the memfd is smaller than the region";
    return "EINVAL";
  }
  void* host = mmap(nullptr, length_bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (host == MAP_FAILED) {
    *error = "mmap of the DMA memfd failed";
    return "ENOMEM";
  }
  DmaRegion region{iova, length_bytes, static_cast<uint8_t*>(host)};
  auto at = std::lower_bound(regions_.begin(), regions_.end(), iova,
                             [](const DmaRegion& r, uint64_t key) { return r.iova < key; });
  regions_.insert(at, region);
  last_ = 0;
  return "";
}

bool DmaRegionTable::Remove(uint64_t iova) {
  for (auto it = regions_.begin(); it != regions_.end(); ++it) {
    if (it->iova != iova) continue;
    munmap(it->host, it->length_bytes);
    regions_.erase(it);
    last_ = 0;
    return true;
  }
  return false;
}

void DmaRegionTable::Clear() {
  for (const DmaRegion& r : regions_) munmap(r.host, r.length_bytes);
  regions_.clear();
  last_ = 0;
}

uint64_t DmaRegionTable::total_bytes() const {
  uint64_t total = 0;
  for (const DmaRegion& r : regions_) total += r.length_bytes;
  return total;
}

const DmaRegion* DmaRegionTable::Find(uint64_t iova) const {
  return TranslateSlow(iova, 1) == nullptr ? nullptr : &regions_[last_];
}

uint8_t* DmaRegionTable::TranslateSlow(uint64_t iova, uint64_t length_bytes) const {
  // The last region whose base is <= iova is the only candidate.
  auto it = std::upper_bound(regions_.begin(), regions_.end(), iova,
                             [](uint64_t key, const DmaRegion& r) { return key < r.iova; });
  if (it == regions_.begin()) return nullptr;
  --it;
  if (length_bytes > it->length_bytes || iova - it->iova > it->length_bytes - length_bytes) return nullptr;
  last_ = static_cast<size_t>(it - regions_.begin());
  return it->host + (iova - it->iova);
}

}  // namespace offpath::emu
