// NVMe statuses as the emulator passes them around (store and controller):
// (Status Code Type << 8) | Status Code, 0 = success; values come from
// nvme_spec.h. Do Not Retry travels beside the status, and the controller
// turns both into the CQE status field when it posts a completion.
#pragma once

#include <offpath/nvme_spec.h>

#include "store.h"

namespace offpath::emu {

constexpr Status MakeStoreStatus(nvme::StatusCodeType type, uint8_t code) {
  return static_cast<Status>((nvme::raw(type) << 8) | code);
}
constexpr Status StoreStatus(nvme::GenericStatus code) {
  return MakeStoreStatus(nvme::StatusCodeType::GENERIC, nvme::raw(code));
}
constexpr Status StoreStatus(nvme::CommandSpecificStatus code) {
  return MakeStoreStatus(nvme::StatusCodeType::COMMAND_SPECIFIC, nvme::raw(code));
}
constexpr Status StoreStatus(nvme::MediaStatus code) {
  return MakeStoreStatus(nvme::StatusCodeType::MEDIA_DATA_INTEGRITY, nvme::raw(code));
}

namespace status {
using G = nvme::GenericStatus;
using C = nvme::CommandSpecificStatus;
using M = nvme::MediaStatus;
inline constexpr Status kSuccess = StoreStatus(G::SUCCESS);
inline constexpr Status kInvalidField = StoreStatus(G::INVALID_FIELD);
inline constexpr Status kInternalError = StoreStatus(G::INTERNAL_ERROR);
inline constexpr Status kInvalidNamespace = StoreStatus(G::INVALID_NAMESPACE_OR_FORMAT);
inline constexpr Status kLbaOutOfRange = StoreStatus(G::LBA_OUT_OF_RANGE);
inline constexpr Status kCapacityExceeded = StoreStatus(G::CAPACITY_EXCEEDED);
inline constexpr Status kInvalidFormat = StoreStatus(C::INVALID_FORMAT);
inline constexpr Status kInsufficientCapacity = StoreStatus(C::NAMESPACE_INSUFFICIENT_CAPACITY);
inline constexpr Status kNamespaceIdUnavailable = StoreStatus(C::NAMESPACE_ID_UNAVAILABLE);
inline constexpr Status kAlreadyAttached = StoreStatus(C::NAMESPACE_ALREADY_ATTACHED);
inline constexpr Status kNotAttached = StoreStatus(C::NAMESPACE_NOT_ATTACHED);
inline constexpr Status kControllerListInvalid = StoreStatus(C::CONTROLLER_LIST_INVALID);
inline constexpr Status kWriteFault = StoreStatus(M::WRITE_FAULT);
inline constexpr Status kUnrecoveredReadError = StoreStatus(M::UNRECOVERED_READ_ERROR);
inline constexpr Status kInvalidOpcode = StoreStatus(G::INVALID_OPCODE);
// An address outside every registered DMA region: what an IOMMU fault looks
// like to the command that caused it.
inline constexpr Status kDmaFault = StoreStatus(G::DATA_TRANSFER_ERROR);
inline constexpr Status kCommandSequenceError = StoreStatus(G::COMMAND_SEQUENCE_ERROR);
inline constexpr Status kPrpOffsetInvalid = StoreStatus(G::PRP_OFFSET_INVALID);
inline constexpr Status kInvalidSglSegmentDescriptor = StoreStatus(G::INVALID_SGL_SEGMENT_DESCRIPTOR);
inline constexpr Status kInvalidNumberOfSglDescriptors = StoreStatus(G::INVALID_NUMBER_OF_SGL_DESCRIPTORS);
inline constexpr Status kDataSglLengthInvalid = StoreStatus(G::DATA_SGL_LENGTH_INVALID);
inline constexpr Status kSglDescriptorTypeInvalid = StoreStatus(G::SGL_DESCRIPTOR_TYPE_INVALID);
inline constexpr Status kCompareFailure = StoreStatus(M::COMPARE_FAILURE);

constexpr uint8_t TypeOf(Status value) { return static_cast<uint8_t>(value >> 8); }
constexpr uint8_t CodeOf(Status value) { return static_cast<uint8_t>(value); }
}  // namespace status

// "LBA_OUT_OF_RANGE", or nullptr for a status nvme_spec.h does not name.
inline const char* StoreStatusName(Status value) {
  return nvme::statusName(static_cast<uint8_t>(value >> 8), static_cast<uint8_t>(value & 0xff));
}

}  // namespace offpath::emu
