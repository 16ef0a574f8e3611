// NVMe statuses as the emulator passes them around internally: (SCT << 8) | SC,
// 0 = success (see store.h). Do Not Retry travels beside the status, and the
// controller turns both into the CQE status field when it posts a completion.
// Names come from the spec header; this file only packs them.
#pragma once

#include <cstdint>

#include "offpath/nvme_spec.h"

namespace offpath::emu {

using Status = uint16_t;

namespace st {

using offpath::nvme::CommandSpecificStatus;
using offpath::nvme::GenericStatus;
using offpath::nvme::MediaStatus;

constexpr Status Of(GenericStatus sc) { return static_cast<Status>(sc); }
constexpr Status Of(CommandSpecificStatus sc) { return static_cast<Status>(0x100 | static_cast<uint8_t>(sc)); }
constexpr Status Of(MediaStatus sc) { return static_cast<Status>(0x200 | static_cast<uint8_t>(sc)); }
constexpr uint8_t TypeOf(Status status) { return static_cast<uint8_t>(status >> 8); }
constexpr uint8_t CodeOf(Status status) { return static_cast<uint8_t>(status); }

constexpr Status kSuccess = Of(GenericStatus::SUCCESS);
constexpr Status kInvalidOpcode = Of(GenericStatus::INVALID_OPCODE);
constexpr Status kInvalidField = Of(GenericStatus::INVALID_FIELD);
// An address outside every registered DMA region: what an IOMMU fault looks
// like to the command that caused it.
constexpr Status kDmaFault = Of(GenericStatus::DATA_TRANSFER_ERROR);
constexpr Status kInternalError = Of(GenericStatus::INTERNAL_ERROR);
constexpr Status kInvalidNamespace = Of(GenericStatus::INVALID_NAMESPACE_OR_FORMAT);
constexpr Status kCommandSequenceError = Of(GenericStatus::COMMAND_SEQUENCE_ERROR);
constexpr Status kPrpOffsetInvalid = Of(GenericStatus::PRP_OFFSET_INVALID);
constexpr Status kInvalidSglSegmentDescriptor = Of(GenericStatus::INVALID_SGL_SEGMENT_DESCRIPTOR);
constexpr Status kInvalidNumberOfSglDescriptors = Of(GenericStatus::INVALID_NUMBER_OF_SGL_DESCRIPTORS);
constexpr Status kDataSglLengthInvalid = Of(GenericStatus::DATA_SGL_LENGTH_INVALID);
constexpr Status kSglDescriptorTypeInvalid = Of(GenericStatus::SGL_DESCRIPTOR_TYPE_INVALID);
constexpr Status kLbaOutOfRange = Of(GenericStatus::LBA_OUT_OF_RANGE);
constexpr Status kCapacityExceeded = Of(GenericStatus::CAPACITY_EXCEEDED);
constexpr Status kAbortedSqDeletion = Of(GenericStatus::ABORTED_SQ_DELETION);
constexpr Status kCompareFailure = Of(MediaStatus::COMPARE_FAILURE);

}  // namespace st
}  // namespace offpath::emu
