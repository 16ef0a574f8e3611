// Turns a command's data pointer (PRP1/PRP2 with PRP lists, or an SGL) into
// host memory segments, validating every entry against the DMA region table.
// Fixed capacity, no allocation: a command that needs more segments than the
// controller advertises is rejected.
#pragma once

#include <cstdint>

#include "dma_regions.h"
#include "store_status.h"
#include "store.h"

namespace offpath::emu {

// MDTS 6 with 4 KiB pages = 256 KiB: at most 65 page pieces for PRPs. SGLs
// may describe up to kMaxSglDescriptors data blocks.
constexpr uint32_t kMdts = 6;
constexpr uint32_t kPageBytes = 4096;
constexpr uint32_t kMaxTransferBytes = kPageBytes << kMdts;
constexpr uint32_t kMaxSglDescriptors = 256;
constexpr uint32_t kMaxSegments = kMaxSglDescriptors;

struct Transfer {
  Segment segments[kMaxSegments];
  uint32_t count = 0;
  uint64_t length_bytes = 0;
};

// PRP rules (NVMe base spec, "Physical Region Page Entry and List"): PRP1 may
// start anywhere dword aligned; PRP2 is the second page if the data spans at
// most two pages, else the address of a PRP list whose entries are page
// aligned and whose last entry chains to the next list page when more remain.
Status MapPrp(const DmaRegionTable& regions, uint64_t prp1, uint64_t prp2, uint64_t length_bytes,
              Transfer* transfer);

// SGL rules: SGL1 in the SQE is a Data Block, Segment or Last Segment
// descriptor; segments hold Data Block / Bit Bucket descriptors and, as their
// last entry only, a (Last) Segment descriptor pointing further.
Status MapSgl(const DmaRegionTable& regions, const uint8_t* sgl1, uint64_t length_bytes,
              Transfer* transfer);

// Copies between a transfer's segments and a flat buffer (admin data pages,
// Compare, DSM ranges).
void CopyFromTransfer(const Transfer& transfer, uint8_t* destination, uint64_t length_bytes);
void CopyToTransfer(const Transfer& transfer, const uint8_t* source, uint64_t length_bytes);

}  // namespace offpath::emu
