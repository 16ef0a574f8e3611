// NVMe data layouts for native code: the addon, the emulator and benches.
//
// The same layouts are declared for TypeScript in libstorage/nvme/*.ts. Every
// size and offset below is pinned with static_assert against the number the
// specification gives, and addon/src/spec_layout.cc exports the compiler's
// view of them so test/10.nvme.spec.test.ts can compare both declarations.
// Change one side and the other together.
//
// Bit fields are plain integers with Field{shift, mask} descriptors rather than
// C++ bit-fields, whose layout the language leaves to the compiler. Structures
// keep their natural alignment (the asserts prove there is no padding), so
// pointers to members are safe; only the SMART log, with a u16 at offset 1,
// has to be packed.
// Everything on the wire is little-endian; this header assumes a little-endian
// host, which is all the runtime supports.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#define OFFPATH_NVME_PACKED __attribute__((packed))

namespace offpath::nvme {

static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "NVMe structures are little-endian");

// A bit field inside a register or dword: `mask` is right-aligned.
template <typename T>
struct Field {
  unsigned shift;
  T mask;
  constexpr T get(T raw) const { return static_cast<T>((raw >> shift) & mask); }
  constexpr T put(T value) const { return static_cast<T>(static_cast<T>(value & mask) << shift); }
  constexpr T set(T raw, T value) const {
    return static_cast<T>((raw & static_cast<T>(~static_cast<T>(mask << shift))) | put(value));
  }
};
using Field8 = Field<uint8_t>;
using Field16 = Field<uint16_t>;
using Field32 = Field<uint32_t>;
using Field64 = Field<uint64_t>;

template <typename E>
constexpr auto raw(E e) {
  return static_cast<std::underlying_type_t<E>>(e);
}

// ---------------------------------------------------------------------------
// Controller registers (BAR0)

struct ControllerRegisters {
  uint64_t cap;
  uint32_t vs;
  uint32_t intms;
  uint32_t intmc;
  uint32_t cc;
  uint32_t rsvd18;
  uint32_t csts;
  uint32_t nssr;
  uint32_t aqa;
  uint64_t asq;
  uint64_t acq;
  uint32_t cmbloc;
  uint32_t cmbsz;
  uint8_t rsvd40[0x1000 - 0x40];
};
static_assert(offsetof(ControllerRegisters, cap) == 0x00);
static_assert(offsetof(ControllerRegisters, vs) == 0x08);
static_assert(offsetof(ControllerRegisters, intms) == 0x0c);
static_assert(offsetof(ControllerRegisters, intmc) == 0x10);
static_assert(offsetof(ControllerRegisters, cc) == 0x14);
static_assert(offsetof(ControllerRegisters, csts) == 0x1c);
static_assert(offsetof(ControllerRegisters, nssr) == 0x20);
static_assert(offsetof(ControllerRegisters, aqa) == 0x24);
static_assert(offsetof(ControllerRegisters, asq) == 0x28);
static_assert(offsetof(ControllerRegisters, acq) == 0x30);
static_assert(offsetof(ControllerRegisters, cmbloc) == 0x38);
static_assert(offsetof(ControllerRegisters, cmbsz) == 0x3c);

// Doorbells follow the 4 KiB register block.
inline constexpr uint32_t DOORBELL_BASE_OFFSET = 0x1000;
static_assert(sizeof(ControllerRegisters) == DOORBELL_BASE_OFFSET);
inline constexpr uint32_t DOORBELL_STRIDE_BASE_BYTES = 4;
// "NVMe" in ASCII: writing it to NSSR resets the NVM subsystem.
inline constexpr uint32_t NSSR_RESET_VALUE = 0x4e564d65;

constexpr uint32_t doorbellStrideBytes(uint32_t dstrd) { return DOORBELL_STRIDE_BASE_BYTES << dstrd; }
constexpr uint32_t sqTailDoorbellOffset(uint32_t qid, uint32_t dstrd) {
  return DOORBELL_BASE_OFFSET + 2 * qid * doorbellStrideBytes(dstrd);
}
constexpr uint32_t cqHeadDoorbellOffset(uint32_t qid, uint32_t dstrd) {
  return DOORBELL_BASE_OFFSET + (2 * qid + 1) * doorbellStrideBytes(dstrd);
}
static_assert(sqTailDoorbellOffset(1, 0) == 0x1008 && cqHeadDoorbellOffset(1, 0) == 0x100c);
static_assert(sqTailDoorbellOffset(1, 2) == 0x1020 && cqHeadDoorbellOffset(1, 2) == 0x1030);

namespace cap {
inline constexpr Field64 MQES{0, 0xffff};  // zero-based
inline constexpr Field64 CQR{16, 0x1};
inline constexpr Field64 AMS{17, 0x3};
inline constexpr Field64 TO{24, 0xff};
inline constexpr Field64 DSTRD{32, 0xf};
inline constexpr Field64 NSSRS{36, 0x1};
inline constexpr Field64 CSS{37, 0xff};
inline constexpr Field64 BPS{45, 0x1};
inline constexpr Field64 MPSMIN{48, 0xf};
inline constexpr Field64 MPSMAX{52, 0xf};
inline constexpr Field64 PMRS{56, 0x1};
inline constexpr Field64 CMBS{57, 0x1};
}  // namespace cap
// CAP.TO unit: the longest wait for CSTS.RDY to follow CC.EN.
inline constexpr uint32_t CAP_TO_UNIT_MS = 500;

enum class CapCss : uint8_t { NVM = 0x01, IO_COMMAND_SETS = 0x40, ADMIN_ONLY = 0x80 };
enum class CapAms : uint8_t { WEIGHTED_ROUND_ROBIN_URGENT = 0x1, VENDOR_SPECIFIC = 0x2 };

namespace cc {
inline constexpr Field32 EN{0, 0x1};
inline constexpr Field32 CSS{4, 0x7};
inline constexpr Field32 MPS{7, 0xf};
inline constexpr Field32 AMS{11, 0x7};
inline constexpr Field32 SHN{14, 0x3};
inline constexpr Field32 IOSQES{16, 0xf};
inline constexpr Field32 IOCQES{20, 0xf};
}  // namespace cc
enum class CcCss : uint8_t { NVM = 0x0, ALL_SUPPORTED = 0x6, ADMIN_ONLY = 0x7 };
enum class CcAms : uint8_t { ROUND_ROBIN = 0x0, WEIGHTED_ROUND_ROBIN_URGENT = 0x1, VENDOR_SPECIFIC = 0x7 };
enum class ShutdownNotification : uint8_t { NONE = 0x0, NORMAL = 0x1, ABRUPT = 0x2 };

namespace csts {
inline constexpr Field32 RDY{0, 0x1};
inline constexpr Field32 CFS{1, 0x1};
inline constexpr Field32 SHST{2, 0x3};
inline constexpr Field32 NSSRO{4, 0x1};
inline constexpr Field32 PP{5, 0x1};
}  // namespace csts
enum class ShutdownStatus : uint8_t { NORMAL = 0x0, OCCURRING = 0x1, COMPLETE = 0x2 };

namespace aqa {
inline constexpr Field32 ASQS{0, 0xfff};  // zero-based
inline constexpr Field32 ACQS{16, 0xfff};  // zero-based
}  // namespace aqa

namespace vs {
inline constexpr Field32 MAJOR{16, 0xffff};
inline constexpr Field32 MINOR{8, 0xff};
inline constexpr Field32 TERTIARY{0, 0xff};
}  // namespace vs

namespace cmbloc {
inline constexpr Field32 BIR{0, 0x7};
inline constexpr Field32 OFST{12, 0xfffff};
}  // namespace cmbloc

namespace cmbsz {
inline constexpr Field32 SQS{0, 0x1};
inline constexpr Field32 CQS{1, 0x1};
inline constexpr Field32 LISTS{2, 0x1};
inline constexpr Field32 RDS{3, 0x1};
inline constexpr Field32 WDS{4, 0x1};
inline constexpr Field32 SZU{8, 0xf};
inline constexpr Field32 SZ{12, 0xfffff};
}  // namespace cmbsz

// ---------------------------------------------------------------------------
// Queue entries

inline constexpr uint32_t ADMIN_QUEUE_MAX_ENTRIES = 4096;
inline constexpr uint32_t IO_QUEUE_MAX_ENTRIES = 65536;
// One slot always stays empty so that head == tail means "empty".
inline constexpr uint32_t QUEUE_MIN_ENTRIES = 2;

struct SglDescriptor {
  uint64_t address;
  uint32_t length;
  uint8_t rsvd12[3];
  uint8_t identifier;  // type in bits 7:4, subtype in bits 3:0
};
static_assert(sizeof(SglDescriptor) == 16);
static_assert(offsetof(SglDescriptor, address) == 0);
static_assert(offsetof(SglDescriptor, length) == 8);
static_assert(offsetof(SglDescriptor, identifier) == 15);

namespace sgl {
inline constexpr Field8 TYPE{4, 0xf};
inline constexpr Field8 SUBTYPE{0, 0xf};
}  // namespace sgl
enum class SglType : uint8_t {
  DATA_BLOCK = 0x0,
  BIT_BUCKET = 0x1,
  SEGMENT = 0x2,
  LAST_SEGMENT = 0x3,
  KEYED_DATA_BLOCK = 0x4,
  TRANSPORT_DATA_BLOCK = 0x5,
};
enum class SglSubtype : uint8_t { ADDRESS = 0x0, OFFSET = 0x1 };

constexpr uint8_t sglIdentifier(SglType type, SglSubtype subtype) {
  return static_cast<uint8_t>(sgl::TYPE.put(raw(type)) | sgl::SUBTYPE.put(raw(subtype)));
}

struct Sqe {
  uint8_t opc;
  uint8_t flags;  // FUSE in bits 1:0, PSDT in bits 7:6
  uint16_t cid;
  uint32_t nsid;
  uint32_t cdw2;
  uint32_t cdw3;
  uint64_t mptr;
  union Dptr {
    struct Prp {
      uint64_t prp1;
      uint64_t prp2;
    } prp;
    SglDescriptor sgl1;
  } dptr;
  uint32_t cdw10;
  uint32_t cdw11;
  uint32_t cdw12;
  uint32_t cdw13;
  uint32_t cdw14;
  uint32_t cdw15;
};
static_assert(sizeof(Sqe) == 64);
static_assert(offsetof(Sqe, opc) == 0);
static_assert(offsetof(Sqe, flags) == 1);
static_assert(offsetof(Sqe, cid) == 2);
static_assert(offsetof(Sqe, nsid) == 4);
static_assert(offsetof(Sqe, cdw2) == 8);
static_assert(offsetof(Sqe, cdw3) == 12);
static_assert(offsetof(Sqe, mptr) == 16);
static_assert(offsetof(Sqe, dptr.prp.prp1) == 24);
static_assert(offsetof(Sqe, dptr.prp.prp2) == 32);
static_assert(offsetof(Sqe, dptr.sgl1) == 24);
static_assert(offsetof(Sqe, cdw10) == 40);
static_assert(offsetof(Sqe, cdw11) == 44);
static_assert(offsetof(Sqe, cdw12) == 48);
static_assert(offsetof(Sqe, cdw13) == 52);
static_assert(offsetof(Sqe, cdw14) == 56);
static_assert(offsetof(Sqe, cdw15) == 60);
// CC.IOSQES takes log2 of the entry size.
inline constexpr uint32_t SQE_SIZE_LOG2 = 6;
static_assert((1u << SQE_SIZE_LOG2) == sizeof(Sqe));

namespace sqe {
inline constexpr Field8 FUSE{0, 0x3};
inline constexpr Field8 PSDT{6, 0x3};
}  // namespace sqe
enum class Fuse : uint8_t { NORMAL = 0x0, FIRST = 0x1, SECOND = 0x2 };
enum class Psdt : uint8_t { PRP = 0x0, SGL_MPTR_CONTIGUOUS = 0x1, SGL_MPTR_SGL = 0x2 };

constexpr uint8_t sqeFlags(Fuse fuse, Psdt psdt) {
  return static_cast<uint8_t>(sqe::FUSE.put(raw(fuse)) | sqe::PSDT.put(raw(psdt)));
}

// Read/Write/Compare/Verify/Write Zeroes keep the starting LBA in CDW10..11.
inline void setSlba(Sqe& sqe, uint64_t slba) {
  sqe.cdw10 = static_cast<uint32_t>(slba);
  sqe.cdw11 = static_cast<uint32_t>(slba >> 32);
}

struct Cqe {
  uint32_t dw0;
  uint32_t dw1;
  uint16_t sqhd;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // phase tag in bit 0, see namespace status
};
static_assert(sizeof(Cqe) == 16);
static_assert(offsetof(Cqe, dw0) == 0);
static_assert(offsetof(Cqe, dw1) == 4);
static_assert(offsetof(Cqe, sqhd) == 8);
static_assert(offsetof(Cqe, sqid) == 10);
static_assert(offsetof(Cqe, cid) == 12);
static_assert(offsetof(Cqe, status) == 14);
inline constexpr uint32_t CQE_SIZE_LOG2 = 4;
static_assert((1u << CQE_SIZE_LOG2) == sizeof(Cqe));

// ---------------------------------------------------------------------------
// Completion status

namespace status {
inline constexpr Field16 PHASE{0, 0x1};
inline constexpr Field16 SC{1, 0xff};
inline constexpr Field16 SCT{9, 0x7};
inline constexpr Field16 CRD{12, 0x3};  // picks Identify Controller CRDT1..3
inline constexpr Field16 MORE{14, 0x1};
inline constexpr Field16 DNR{15, 0x1};
}  // namespace status

enum class StatusCodeType : uint8_t {
  GENERIC = 0x0,
  COMMAND_SPECIFIC = 0x1,
  MEDIA_DATA_INTEGRITY = 0x2,
  PATH = 0x3,
  VENDOR_SPECIFIC = 0x7,
};

// Codes from 0x80 up belong to the NVM command set.
enum class GenericStatus : uint8_t {
  SUCCESS = 0x00,
  INVALID_OPCODE = 0x01,
  INVALID_FIELD = 0x02,
  CID_CONFLICT = 0x03,
  DATA_TRANSFER_ERROR = 0x04,
  ABORTED_POWER_LOSS = 0x05,
  INTERNAL_ERROR = 0x06,
  ABORTED_BY_REQUEST = 0x07,
  ABORTED_SQ_DELETION = 0x08,
  ABORTED_FAILED_FUSED = 0x09,
  ABORTED_MISSING_FUSED = 0x0a,
  INVALID_NAMESPACE_OR_FORMAT = 0x0b,
  COMMAND_SEQUENCE_ERROR = 0x0c,
  INVALID_SGL_SEGMENT_DESCRIPTOR = 0x0d,
  INVALID_NUMBER_OF_SGL_DESCRIPTORS = 0x0e,
  DATA_SGL_LENGTH_INVALID = 0x0f,
  METADATA_SGL_LENGTH_INVALID = 0x10,
  SGL_DESCRIPTOR_TYPE_INVALID = 0x11,
  INVALID_USE_OF_CMB = 0x12,
  PRP_OFFSET_INVALID = 0x13,
  ATOMIC_WRITE_UNIT_EXCEEDED = 0x14,
  OPERATION_DENIED = 0x15,
  SGL_OFFSET_INVALID = 0x16,
  HOST_ID_INCONSISTENT_FORMAT = 0x18,
  KEEP_ALIVE_EXPIRED = 0x19,
  INVALID_KEEP_ALIVE_TIMEOUT = 0x1a,
  ABORTED_PREEMPT = 0x1b,
  SANITIZE_FAILED = 0x1c,
  SANITIZE_IN_PROGRESS = 0x1d,
  SGL_DATA_BLOCK_GRANULARITY_INVALID = 0x1e,
  COMMAND_NOT_SUPPORTED_FOR_CMB_QUEUE = 0x1f,
  NS_WRITE_PROTECTED = 0x20,
  COMMAND_INTERRUPTED = 0x21,
  TRANSIENT_TRANSPORT_ERROR = 0x22,
  LBA_OUT_OF_RANGE = 0x80,
  CAPACITY_EXCEEDED = 0x81,
  NAMESPACE_NOT_READY = 0x82,
  RESERVATION_CONFLICT = 0x83,
  FORMAT_IN_PROGRESS = 0x84,
};

// Codes from 0x80 up belong to the NVM command set.
enum class CommandSpecificStatus : uint8_t {
  COMPLETION_QUEUE_INVALID = 0x00,
  INVALID_QUEUE_IDENTIFIER = 0x01,
  INVALID_QUEUE_SIZE = 0x02,
  ABORT_COMMAND_LIMIT_EXCEEDED = 0x03,
  ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED = 0x05,
  INVALID_FIRMWARE_SLOT = 0x06,
  INVALID_FIRMWARE_IMAGE = 0x07,
  INVALID_INTERRUPT_VECTOR = 0x08,
  INVALID_LOG_PAGE = 0x09,
  INVALID_FORMAT = 0x0a,
  FIRMWARE_REQUIRES_CONVENTIONAL_RESET = 0x0b,
  INVALID_QUEUE_DELETION = 0x0c,
  FEATURE_ID_NOT_SAVEABLE = 0x0d,
  FEATURE_NOT_CHANGEABLE = 0x0e,
  FEATURE_NOT_NAMESPACE_SPECIFIC = 0x0f,
  FIRMWARE_REQUIRES_SUBSYSTEM_RESET = 0x10,
  FIRMWARE_REQUIRES_RESET = 0x11,
  FIRMWARE_REQUIRES_MAX_TIME_VIOLATION = 0x12,
  FIRMWARE_ACTIVATION_PROHIBITED = 0x13,
  OVERLAPPING_RANGE = 0x14,
  NAMESPACE_INSUFFICIENT_CAPACITY = 0x15,
  NAMESPACE_ID_UNAVAILABLE = 0x16,
  NAMESPACE_ALREADY_ATTACHED = 0x18,
  NAMESPACE_IS_PRIVATE = 0x19,
  NAMESPACE_NOT_ATTACHED = 0x1a,
  THIN_PROVISIONING_NOT_SUPPORTED = 0x1b,
  CONTROLLER_LIST_INVALID = 0x1c,
  DEVICE_SELF_TEST_IN_PROGRESS = 0x1d,
  BOOT_PARTITION_WRITE_PROHIBITED = 0x1e,
  INVALID_CONTROLLER_IDENTIFIER = 0x1f,
  INVALID_SECONDARY_CONTROLLER_STATE = 0x20,
  INVALID_NUMBER_OF_CONTROLLER_RESOURCES = 0x21,
  INVALID_RESOURCE_IDENTIFIER = 0x22,
  SANITIZE_PROHIBITED_WHILE_PMR_ENABLED = 0x23,
  ANA_GROUP_IDENTIFIER_INVALID = 0x24,
  ANA_ATTACH_FAILED = 0x25,
  CONFLICTING_ATTRIBUTES = 0x80,
  INVALID_PROTECTION_INFORMATION = 0x81,
  ATTEMPTED_WRITE_TO_READ_ONLY_RANGE = 0x82,
};

enum class MediaStatus : uint8_t {
  WRITE_FAULT = 0x80,
  UNRECOVERED_READ_ERROR = 0x81,
  END_TO_END_GUARD = 0x82,
  END_TO_END_APPLICATION_TAG = 0x83,
  END_TO_END_REFERENCE_TAG = 0x84,
  COMPARE_FAILURE = 0x85,
  ACCESS_DENIED = 0x86,
  DEALLOCATED_OR_UNWRITTEN_BLOCK = 0x87,
};

enum class PathStatus : uint8_t {
  INTERNAL_PATH_ERROR = 0x00,
  ASYMMETRIC_ACCESS_PERSISTENT_LOSS = 0x01,
  ASYMMETRIC_ACCESS_INACCESSIBLE = 0x02,
  ASYMMETRIC_ACCESS_TRANSITION = 0x03,
  CONTROLLER_PATHING_ERROR = 0x60,
  HOST_PATHING_ERROR = 0x70,
  COMMAND_ABORTED_BY_HOST = 0x71,
};

constexpr uint16_t makeStatus(StatusCodeType sct, uint8_t sc, bool dnr = false, bool more = false,
                              uint8_t crd = 0, uint8_t phase = 0) {
  return static_cast<uint16_t>(status::PHASE.put(phase) | status::SC.put(sc) | status::SCT.put(raw(sct)) |
                               status::CRD.put(crd) | status::MORE.put(more) | status::DNR.put(dnr));
}
constexpr uint16_t makeStatus(GenericStatus sc, bool dnr = false) {
  return makeStatus(StatusCodeType::GENERIC, raw(sc), dnr);
}
constexpr uint16_t makeStatus(CommandSpecificStatus sc, bool dnr = false) {
  return makeStatus(StatusCodeType::COMMAND_SPECIFIC, raw(sc), dnr);
}
constexpr uint16_t makeStatus(MediaStatus sc, bool dnr = false) {
  return makeStatus(StatusCodeType::MEDIA_DATA_INTEGRITY, raw(sc), dnr);
}
constexpr bool statusIsSuccess(uint16_t status16) {
  return status::SC.get(status16) == 0 && status::SCT.get(status16) == 0;
}
static_assert(makeStatus(GenericStatus::LBA_OUT_OF_RANGE, true) == 0x8100);

// Stable names matching statusName() in libstorage/nvme/status.ts; nullptr
// for codes the table does not know (callers print "SCT<n>_SC0x<hh>").
constexpr const char* statusName(uint8_t sct, uint8_t sc) {
  switch (sct) {
    case raw(StatusCodeType::GENERIC):
      switch (static_cast<GenericStatus>(sc)) {
        case GenericStatus::SUCCESS: return "SUCCESS";
        case GenericStatus::INVALID_OPCODE: return "INVALID_OPCODE";
        case GenericStatus::INVALID_FIELD: return "INVALID_FIELD";
        case GenericStatus::CID_CONFLICT: return "CID_CONFLICT";
        case GenericStatus::DATA_TRANSFER_ERROR: return "DATA_TRANSFER_ERROR";
        case GenericStatus::ABORTED_POWER_LOSS: return "ABORTED_POWER_LOSS";
        case GenericStatus::INTERNAL_ERROR: return "INTERNAL_ERROR";
        case GenericStatus::ABORTED_BY_REQUEST: return "ABORTED_BY_REQUEST";
        case GenericStatus::ABORTED_SQ_DELETION: return "ABORTED_SQ_DELETION";
        case GenericStatus::ABORTED_FAILED_FUSED: return "ABORTED_FAILED_FUSED";
        case GenericStatus::ABORTED_MISSING_FUSED: return "ABORTED_MISSING_FUSED";
        case GenericStatus::INVALID_NAMESPACE_OR_FORMAT: return "INVALID_NAMESPACE_OR_FORMAT";
        case GenericStatus::COMMAND_SEQUENCE_ERROR: return "COMMAND_SEQUENCE_ERROR";
        case GenericStatus::INVALID_SGL_SEGMENT_DESCRIPTOR: return "INVALID_SGL_SEGMENT_DESCRIPTOR";
        case GenericStatus::INVALID_NUMBER_OF_SGL_DESCRIPTORS: return "INVALID_NUMBER_OF_SGL_DESCRIPTORS";
        case GenericStatus::DATA_SGL_LENGTH_INVALID: return "DATA_SGL_LENGTH_INVALID";
        case GenericStatus::METADATA_SGL_LENGTH_INVALID: return "METADATA_SGL_LENGTH_INVALID";
        case GenericStatus::SGL_DESCRIPTOR_TYPE_INVALID: return "SGL_DESCRIPTOR_TYPE_INVALID";
        case GenericStatus::INVALID_USE_OF_CMB: return "INVALID_USE_OF_CMB";
        case GenericStatus::PRP_OFFSET_INVALID: return "PRP_OFFSET_INVALID";
        case GenericStatus::ATOMIC_WRITE_UNIT_EXCEEDED: return "ATOMIC_WRITE_UNIT_EXCEEDED";
        case GenericStatus::OPERATION_DENIED: return "OPERATION_DENIED";
        case GenericStatus::SGL_OFFSET_INVALID: return "SGL_OFFSET_INVALID";
        case GenericStatus::HOST_ID_INCONSISTENT_FORMAT: return "HOST_ID_INCONSISTENT_FORMAT";
        case GenericStatus::KEEP_ALIVE_EXPIRED: return "KEEP_ALIVE_EXPIRED";
        case GenericStatus::INVALID_KEEP_ALIVE_TIMEOUT: return "INVALID_KEEP_ALIVE_TIMEOUT";
        case GenericStatus::ABORTED_PREEMPT: return "ABORTED_PREEMPT";
        case GenericStatus::SANITIZE_FAILED: return "SANITIZE_FAILED";
        case GenericStatus::SANITIZE_IN_PROGRESS: return "SANITIZE_IN_PROGRESS";
        case GenericStatus::SGL_DATA_BLOCK_GRANULARITY_INVALID: return "SGL_DATA_BLOCK_GRANULARITY_INVALID";
        case GenericStatus::COMMAND_NOT_SUPPORTED_FOR_CMB_QUEUE: return "COMMAND_NOT_SUPPORTED_FOR_CMB_QUEUE";
        case GenericStatus::NS_WRITE_PROTECTED: return "NS_WRITE_PROTECTED";
        case GenericStatus::COMMAND_INTERRUPTED: return "COMMAND_INTERRUPTED";
        case GenericStatus::TRANSIENT_TRANSPORT_ERROR: return "TRANSIENT_TRANSPORT_ERROR";
        case GenericStatus::LBA_OUT_OF_RANGE: return "LBA_OUT_OF_RANGE";
        case GenericStatus::CAPACITY_EXCEEDED: return "CAPACITY_EXCEEDED";
        case GenericStatus::NAMESPACE_NOT_READY: return "NAMESPACE_NOT_READY";
        case GenericStatus::RESERVATION_CONFLICT: return "RESERVATION_CONFLICT";
        case GenericStatus::FORMAT_IN_PROGRESS: return "FORMAT_IN_PROGRESS";
      }
      return nullptr;
    case raw(StatusCodeType::COMMAND_SPECIFIC):
      switch (static_cast<CommandSpecificStatus>(sc)) {
        case CommandSpecificStatus::COMPLETION_QUEUE_INVALID: return "COMPLETION_QUEUE_INVALID";
        case CommandSpecificStatus::INVALID_QUEUE_IDENTIFIER: return "INVALID_QUEUE_IDENTIFIER";
        case CommandSpecificStatus::INVALID_QUEUE_SIZE: return "INVALID_QUEUE_SIZE";
        case CommandSpecificStatus::ABORT_COMMAND_LIMIT_EXCEEDED: return "ABORT_COMMAND_LIMIT_EXCEEDED";
        case CommandSpecificStatus::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED: return "ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED";
        case CommandSpecificStatus::INVALID_FIRMWARE_SLOT: return "INVALID_FIRMWARE_SLOT";
        case CommandSpecificStatus::INVALID_FIRMWARE_IMAGE: return "INVALID_FIRMWARE_IMAGE";
        case CommandSpecificStatus::INVALID_INTERRUPT_VECTOR: return "INVALID_INTERRUPT_VECTOR";
        case CommandSpecificStatus::INVALID_LOG_PAGE: return "INVALID_LOG_PAGE";
        case CommandSpecificStatus::INVALID_FORMAT: return "INVALID_FORMAT";
        case CommandSpecificStatus::FIRMWARE_REQUIRES_CONVENTIONAL_RESET: return "FIRMWARE_REQUIRES_CONVENTIONAL_RESET";
        case CommandSpecificStatus::INVALID_QUEUE_DELETION: return "INVALID_QUEUE_DELETION";
        case CommandSpecificStatus::FEATURE_ID_NOT_SAVEABLE: return "FEATURE_ID_NOT_SAVEABLE";
        case CommandSpecificStatus::FEATURE_NOT_CHANGEABLE: return "FEATURE_NOT_CHANGEABLE";
        case CommandSpecificStatus::FEATURE_NOT_NAMESPACE_SPECIFIC: return "FEATURE_NOT_NAMESPACE_SPECIFIC";
        case CommandSpecificStatus::FIRMWARE_REQUIRES_SUBSYSTEM_RESET: return "FIRMWARE_REQUIRES_SUBSYSTEM_RESET";
        case CommandSpecificStatus::FIRMWARE_REQUIRES_RESET: return "FIRMWARE_REQUIRES_RESET";
        case CommandSpecificStatus::FIRMWARE_REQUIRES_MAX_TIME_VIOLATION: return "FIRMWARE_REQUIRES_MAX_TIME_VIOLATION";
        case CommandSpecificStatus::FIRMWARE_ACTIVATION_PROHIBITED: return "FIRMWARE_ACTIVATION_PROHIBITED";
        case CommandSpecificStatus::OVERLAPPING_RANGE: return "OVERLAPPING_RANGE";
        case CommandSpecificStatus::NAMESPACE_INSUFFICIENT_CAPACITY: return "NAMESPACE_INSUFFICIENT_CAPACITY";
        case CommandSpecificStatus::NAMESPACE_ID_UNAVAILABLE: return "NAMESPACE_ID_UNAVAILABLE";
        case CommandSpecificStatus::NAMESPACE_ALREADY_ATTACHED: return "NAMESPACE_ALREADY_ATTACHED";
        case CommandSpecificStatus::NAMESPACE_IS_PRIVATE: return "NAMESPACE_IS_PRIVATE";
        case CommandSpecificStatus::NAMESPACE_NOT_ATTACHED: return "NAMESPACE_NOT_ATTACHED";
        case CommandSpecificStatus::THIN_PROVISIONING_NOT_SUPPORTED: return "THIN_PROVISIONING_NOT_SUPPORTED";
        case CommandSpecificStatus::CONTROLLER_LIST_INVALID: return "CONTROLLER_LIST_INVALID";
        case CommandSpecificStatus::DEVICE_SELF_TEST_IN_PROGRESS: return "DEVICE_SELF_TEST_IN_PROGRESS";
        case CommandSpecificStatus::BOOT_PARTITION_WRITE_PROHIBITED: return "BOOT_PARTITION_WRITE_PROHIBITED";
        case CommandSpecificStatus::INVALID_CONTROLLER_IDENTIFIER: return "INVALID_CONTROLLER_IDENTIFIER";
        case CommandSpecificStatus::INVALID_SECONDARY_CONTROLLER_STATE: return "INVALID_SECONDARY_CONTROLLER_STATE";
        case CommandSpecificStatus::INVALID_NUMBER_OF_CONTROLLER_RESOURCES: return "INVALID_NUMBER_OF_CONTROLLER_RESOURCES";
        case CommandSpecificStatus::INVALID_RESOURCE_IDENTIFIER: return "INVALID_RESOURCE_IDENTIFIER";
        case CommandSpecificStatus::SANITIZE_PROHIBITED_WHILE_PMR_ENABLED: return "SANITIZE_PROHIBITED_WHILE_PMR_ENABLED";
        case CommandSpecificStatus::ANA_GROUP_IDENTIFIER_INVALID: return "ANA_GROUP_IDENTIFIER_INVALID";
        case CommandSpecificStatus::ANA_ATTACH_FAILED: return "ANA_ATTACH_FAILED";
        case CommandSpecificStatus::CONFLICTING_ATTRIBUTES: return "CONFLICTING_ATTRIBUTES";
        case CommandSpecificStatus::INVALID_PROTECTION_INFORMATION: return "INVALID_PROTECTION_INFORMATION";
        case CommandSpecificStatus::ATTEMPTED_WRITE_TO_READ_ONLY_RANGE: return "ATTEMPTED_WRITE_TO_READ_ONLY_RANGE";
      }
      return nullptr;
    case raw(StatusCodeType::MEDIA_DATA_INTEGRITY):
      switch (static_cast<MediaStatus>(sc)) {
        case MediaStatus::WRITE_FAULT: return "WRITE_FAULT";
        case MediaStatus::UNRECOVERED_READ_ERROR: return "UNRECOVERED_READ_ERROR";
        case MediaStatus::END_TO_END_GUARD: return "END_TO_END_GUARD";
        case MediaStatus::END_TO_END_APPLICATION_TAG: return "END_TO_END_APPLICATION_TAG";
        case MediaStatus::END_TO_END_REFERENCE_TAG: return "END_TO_END_REFERENCE_TAG";
        case MediaStatus::COMPARE_FAILURE: return "COMPARE_FAILURE";
        case MediaStatus::ACCESS_DENIED: return "ACCESS_DENIED";
        case MediaStatus::DEALLOCATED_OR_UNWRITTEN_BLOCK: return "DEALLOCATED_OR_UNWRITTEN_BLOCK";
      }
      return nullptr;
    case raw(StatusCodeType::PATH):
      switch (static_cast<PathStatus>(sc)) {
        case PathStatus::INTERNAL_PATH_ERROR: return "INTERNAL_PATH_ERROR";
        case PathStatus::ASYMMETRIC_ACCESS_PERSISTENT_LOSS: return "ASYMMETRIC_ACCESS_PERSISTENT_LOSS";
        case PathStatus::ASYMMETRIC_ACCESS_INACCESSIBLE: return "ASYMMETRIC_ACCESS_INACCESSIBLE";
        case PathStatus::ASYMMETRIC_ACCESS_TRANSITION: return "ASYMMETRIC_ACCESS_TRANSITION";
        case PathStatus::CONTROLLER_PATHING_ERROR: return "CONTROLLER_PATHING_ERROR";
        case PathStatus::HOST_PATHING_ERROR: return "HOST_PATHING_ERROR";
        case PathStatus::COMMAND_ABORTED_BY_HOST: return "COMMAND_ABORTED_BY_HOST";
      }
      return nullptr;
    default:
      return nullptr;
  }
}

// ---------------------------------------------------------------------------
// Opcodes

enum class AdminOpcode : uint8_t {
  DELETE_IO_SQ = 0x00,
  CREATE_IO_SQ = 0x01,
  GET_LOG_PAGE = 0x02,
  DELETE_IO_CQ = 0x04,
  CREATE_IO_CQ = 0x05,
  IDENTIFY = 0x06,
  ABORT = 0x08,
  SET_FEATURES = 0x09,
  GET_FEATURES = 0x0a,
  ASYNC_EVENT_REQUEST = 0x0c,
  NAMESPACE_MANAGEMENT = 0x0d,
  FIRMWARE_COMMIT = 0x10,
  FIRMWARE_IMAGE_DOWNLOAD = 0x11,
  DEVICE_SELF_TEST = 0x14,
  NAMESPACE_ATTACHMENT = 0x15,
  KEEP_ALIVE = 0x18,
  DIRECTIVE_SEND = 0x19,
  DIRECTIVE_RECEIVE = 0x1a,
  VIRTUALIZATION_MANAGEMENT = 0x1c,
  DOORBELL_BUFFER_CONFIG = 0x7c,
  FORMAT_NVM = 0x80,
  SECURITY_SEND = 0x81,
  SECURITY_RECEIVE = 0x82,
  SANITIZE = 0x84,
};
inline constexpr uint8_t ADMIN_VENDOR_OPCODE_MIN = 0xc0;

enum class NvmOpcode : uint8_t {
  FLUSH = 0x00,
  WRITE = 0x01,
  READ = 0x02,
  WRITE_UNCORRECTABLE = 0x04,
  COMPARE = 0x05,
  WRITE_ZEROES = 0x08,
  DATASET_MANAGEMENT = 0x09,
  VERIFY = 0x0c,
  RESERVATION_REGISTER = 0x0d,
  RESERVATION_REPORT = 0x0e,
  RESERVATION_ACQUIRE = 0x11,
  RESERVATION_RELEASE = 0x15,
};
inline constexpr uint8_t NVM_VENDOR_OPCODE_MIN = 0x80;

// Opcode bits 1:0 give the direction of the data transfer.
namespace opc {
inline constexpr Field8 DATA_TRANSFER{0, 0x3};
}  // namespace opc
enum class DataTransfer : uint8_t { NONE = 0x0, HOST_TO_CONTROLLER = 0x1, CONTROLLER_TO_HOST = 0x2, BIDIRECTIONAL = 0x3 };

// ---------------------------------------------------------------------------
// PRP lists

inline constexpr uint32_t PRP_ENTRY_SIZE_BYTES = 8;
// PRP1 may point inside a page but bits 1:0 must be clear; later entries start pages.
inline constexpr uint32_t PRP1_ALIGNMENT_BYTES = 4;
inline constexpr uint32_t MEMORY_PAGE_SIZE_MIN_BYTES = 4096;

constexpr uint64_t memoryPageSizeBytes(uint32_t mps) { return uint64_t{MEMORY_PAGE_SIZE_MIN_BYTES} << mps; }

constexpr uint64_t prpEntriesNeeded(uint64_t offsetInPage, uint64_t lengthBytes, uint64_t pageSizeBytes) {
  return lengthBytes == 0 ? 0 : (offsetInPage + lengthBytes + pageSizeBytes - 1) / pageSizeBytes;
}

// PRP1 and PRP2 carry up to two entries; beyond that PRP2 points at a list
// whose pages (page aligned, as we allocate them) each give their last slot to
// the next page while entries remain.
constexpr uint64_t prpListPagesNeeded(uint64_t offsetInPage, uint64_t lengthBytes, uint64_t pageSizeBytes) {
  const uint64_t entries = prpEntriesNeeded(offsetInPage, lengthBytes, pageSizeBytes);
  if (entries <= 2) return 0;
  const uint64_t listEntries = entries - 1;
  const uint64_t perPage = pageSizeBytes / PRP_ENTRY_SIZE_BYTES;
  if (listEntries <= perPage) return 1;
  return (listEntries - 1 + perPage - 2) / (perPage - 1);
}
static_assert(prpEntriesNeeded(0x200, 4096, 4096) == 2 && prpListPagesNeeded(0x200, 4096, 4096) == 0);
static_assert(prpListPagesNeeded(0, 513 * 4096, 4096) == 1 && prpListPagesNeeded(0, 514 * 4096, 4096) == 2);

// ---------------------------------------------------------------------------
// I/O commands

namespace rw {
inline constexpr Field32 CDW12_NLB{0, 0xffff};  // zero-based
inline constexpr Field32 CDW12_DEAC{25, 0x1};   // Write Zeroes only
inline constexpr Field32 CDW12_PRINFO{26, 0xf};
inline constexpr Field32 CDW12_FUA{30, 0x1};
inline constexpr Field32 CDW12_LR{31, 0x1};
}  // namespace rw

namespace dsm {
inline constexpr Field32 CDW10_NR{0, 0xff};  // zero-based
inline constexpr Field32 CDW11_IDR{0, 0x1};
inline constexpr Field32 CDW11_IDW{1, 0x1};
inline constexpr Field32 CDW11_AD{2, 0x1};
}  // namespace dsm
inline constexpr uint32_t DSM_MAX_RANGES = 256;

struct DsmRange {
  uint32_t attributes;
  uint32_t nlb;  // not zero-based
  uint64_t slba;
};
static_assert(sizeof(DsmRange) == 16);
static_assert(offsetof(DsmRange, attributes) == 0);
static_assert(offsetof(DsmRange, nlb) == 4);
static_assert(offsetof(DsmRange, slba) == 8);

// ---------------------------------------------------------------------------
// Queue management (admin)

namespace create_io_sq {
inline constexpr Field32 CDW10_QID{0, 0xffff};
inline constexpr Field32 CDW10_QSIZE{16, 0xffff};  // zero-based
inline constexpr Field32 CDW11_PC{0, 0x1};
inline constexpr Field32 CDW11_QPRIO{1, 0x3};
inline constexpr Field32 CDW11_CQID{16, 0xffff};
}  // namespace create_io_sq
enum class QueuePriority : uint8_t { URGENT = 0x0, HIGH = 0x1, MEDIUM = 0x2, LOW = 0x3 };

namespace create_io_cq {
inline constexpr Field32 CDW10_QID{0, 0xffff};
inline constexpr Field32 CDW10_QSIZE{16, 0xffff};  // zero-based
inline constexpr Field32 CDW11_PC{0, 0x1};
inline constexpr Field32 CDW11_IEN{1, 0x1};
inline constexpr Field32 CDW11_IV{16, 0xffff};
}  // namespace create_io_cq

namespace delete_io_queue {
inline constexpr Field32 CDW10_QID{0, 0xffff};
}  // namespace delete_io_queue

namespace abort_cmd {
inline constexpr Field32 CDW10_SQID{0, 0xffff};
inline constexpr Field32 CDW10_CID{16, 0xffff};
}  // namespace abort_cmd

// ---------------------------------------------------------------------------
// Identify

inline constexpr uint32_t NSID_BROADCAST = 0xffffffff;
inline constexpr uint32_t IDENTIFY_DATA_SIZE_BYTES = 4096;

namespace identify {
inline constexpr Field32 CDW10_CNS{0, 0xff};
inline constexpr Field32 CDW10_CNTID{16, 0xffff};
inline constexpr Field32 CDW11_CSI{24, 0xff};
}  // namespace identify

enum class Cns : uint8_t {
  NS = 0x00,
  CTRL = 0x01,
  ACTIVE_NS_LIST = 0x02,
  NS_DESCRIPTOR_LIST = 0x03,
  ALLOCATED_NS_LIST = 0x10,
  ALLOCATED_NS = 0x11,
  NS_ATTACHED_CTRL_LIST = 0x12,
  CTRL_LIST = 0x13,
  PRIMARY_CTRL_CAPS = 0x14,
  SECONDARY_CTRL_LIST = 0x15,
};

struct PowerStateDescriptor {
  uint16_t mp;
  uint8_t rsvd2;
  uint8_t flags;  // bit 0 max power scale, bit 1 non-operational
  uint32_t enlat;
  uint32_t exlat;
  uint8_t rrt;
  uint8_t rrl;
  uint8_t rwt;
  uint8_t rwl;
  uint8_t rsvd16[16];
};
static_assert(sizeof(PowerStateDescriptor) == 32);
static_assert(offsetof(PowerStateDescriptor, mp) == 0);
static_assert(offsetof(PowerStateDescriptor, flags) == 3);
static_assert(offsetof(PowerStateDescriptor, enlat) == 4);
static_assert(offsetof(PowerStateDescriptor, exlat) == 8);
static_assert(offsetof(PowerStateDescriptor, rrt) == 12);
static_assert(offsetof(PowerStateDescriptor, rrl) == 13);
static_assert(offsetof(PowerStateDescriptor, rwt) == 14);
static_assert(offsetof(PowerStateDescriptor, rwl) == 15);

// Strings (sn, mn, fr, subnqn) are ASCII padded with spaces, not NUL terminated.
struct IdentifyController {
  uint16_t vid;
  uint16_t ssvid;
  char sn[20];
  char mn[40];
  char fr[8];
  uint8_t rab;
  uint8_t ieee[3];
  uint8_t cmic;
  uint8_t mdts;  // 2^mdts units of CAP.MPSMIN pages; 0 = unlimited
  uint16_t cntlid;
  uint32_t ver;
  uint32_t rtd3r;
  uint32_t rtd3e;
  uint32_t oaes;
  uint32_t ctratt;
  uint16_t rrls;
  uint8_t rsvd102[9];
  uint8_t cntrltype;
  uint8_t fguid[16];
  uint16_t crdt1;  // 100 ms units
  uint16_t crdt2;
  uint16_t crdt3;
  uint8_t rsvd134[122];
  uint16_t oacs;
  uint8_t acl;
  uint8_t aerl;
  uint8_t frmw;
  uint8_t lpa;
  uint8_t elpe;
  uint8_t npss;
  uint8_t avscc;
  uint8_t apsta;
  uint16_t wctemp;
  uint16_t cctemp;
  uint16_t mtfa;
  uint32_t hmpre;
  uint32_t hmmin;
  uint8_t tnvmcap[16];  // 128-bit byte counts
  uint8_t unvmcap[16];
  uint32_t rpmbs;
  uint16_t edstt;
  uint8_t dsto;
  uint8_t fwug;
  uint16_t kas;
  uint16_t hctma;
  uint16_t mntmt;
  uint16_t mxtmt;
  uint32_t sanicap;
  uint8_t rsvd332[180];
  uint8_t sqes;
  uint8_t cqes;
  uint16_t maxcmd;
  uint32_t nn;
  uint16_t oncs;
  uint16_t fuses;
  uint8_t fna;
  uint8_t vwc;
  uint16_t awun;
  uint16_t awupf;
  uint8_t nvscc;
  uint8_t nwpc;
  uint16_t acwu;
  uint16_t rsvd534;
  uint32_t sgls;
  uint32_t mnan;
  uint8_t rsvd544[224];
  char subnqn[256];
  uint8_t rsvd1024[768];
  uint8_t fabrics[256];
  PowerStateDescriptor psd[32];
  uint8_t vs[1024];
};
static_assert(sizeof(IdentifyController) == 4096);
static_assert(offsetof(IdentifyController, vid) == 0);
static_assert(offsetof(IdentifyController, ssvid) == 2);
static_assert(offsetof(IdentifyController, sn) == 4 && sizeof(IdentifyController::sn) == 20);
static_assert(offsetof(IdentifyController, mn) == 24 && sizeof(IdentifyController::mn) == 40);
static_assert(offsetof(IdentifyController, fr) == 64 && sizeof(IdentifyController::fr) == 8);
static_assert(offsetof(IdentifyController, rab) == 72);
static_assert(offsetof(IdentifyController, ieee) == 73 && sizeof(IdentifyController::ieee) == 3);
static_assert(offsetof(IdentifyController, cmic) == 76);
static_assert(offsetof(IdentifyController, mdts) == 77);
static_assert(offsetof(IdentifyController, cntlid) == 78);
static_assert(offsetof(IdentifyController, ver) == 80);
static_assert(offsetof(IdentifyController, rtd3r) == 84);
static_assert(offsetof(IdentifyController, rtd3e) == 88);
static_assert(offsetof(IdentifyController, oaes) == 92);
static_assert(offsetof(IdentifyController, ctratt) == 96);
static_assert(offsetof(IdentifyController, rrls) == 100);
static_assert(offsetof(IdentifyController, cntrltype) == 111);
static_assert(offsetof(IdentifyController, fguid) == 112 && sizeof(IdentifyController::fguid) == 16);
static_assert(offsetof(IdentifyController, crdt1) == 128);
static_assert(offsetof(IdentifyController, crdt2) == 130);
static_assert(offsetof(IdentifyController, crdt3) == 132);
static_assert(offsetof(IdentifyController, oacs) == 256);
static_assert(offsetof(IdentifyController, acl) == 258);
static_assert(offsetof(IdentifyController, aerl) == 259);
static_assert(offsetof(IdentifyController, frmw) == 260);
static_assert(offsetof(IdentifyController, lpa) == 261);
static_assert(offsetof(IdentifyController, elpe) == 262);
static_assert(offsetof(IdentifyController, npss) == 263);
static_assert(offsetof(IdentifyController, avscc) == 264);
static_assert(offsetof(IdentifyController, apsta) == 265);
static_assert(offsetof(IdentifyController, wctemp) == 266);
static_assert(offsetof(IdentifyController, cctemp) == 268);
static_assert(offsetof(IdentifyController, mtfa) == 270);
static_assert(offsetof(IdentifyController, hmpre) == 272);
static_assert(offsetof(IdentifyController, hmmin) == 276);
static_assert(offsetof(IdentifyController, tnvmcap) == 280 && sizeof(IdentifyController::tnvmcap) == 16);
static_assert(offsetof(IdentifyController, unvmcap) == 296);
static_assert(offsetof(IdentifyController, rpmbs) == 312);
static_assert(offsetof(IdentifyController, edstt) == 316);
static_assert(offsetof(IdentifyController, dsto) == 318);
static_assert(offsetof(IdentifyController, fwug) == 319);
static_assert(offsetof(IdentifyController, kas) == 320);
static_assert(offsetof(IdentifyController, hctma) == 322);
static_assert(offsetof(IdentifyController, mntmt) == 324);
static_assert(offsetof(IdentifyController, mxtmt) == 326);
static_assert(offsetof(IdentifyController, sanicap) == 328);
static_assert(offsetof(IdentifyController, sqes) == 512);
static_assert(offsetof(IdentifyController, cqes) == 513);
static_assert(offsetof(IdentifyController, maxcmd) == 514);
static_assert(offsetof(IdentifyController, nn) == 516);
static_assert(offsetof(IdentifyController, oncs) == 520);
static_assert(offsetof(IdentifyController, fuses) == 522);
static_assert(offsetof(IdentifyController, fna) == 524);
static_assert(offsetof(IdentifyController, vwc) == 525);
static_assert(offsetof(IdentifyController, awun) == 526);
static_assert(offsetof(IdentifyController, awupf) == 528);
static_assert(offsetof(IdentifyController, nvscc) == 530);
static_assert(offsetof(IdentifyController, nwpc) == 531);
static_assert(offsetof(IdentifyController, acwu) == 532);
static_assert(offsetof(IdentifyController, sgls) == 536);
static_assert(offsetof(IdentifyController, mnan) == 540);
static_assert(offsetof(IdentifyController, subnqn) == 768 && sizeof(IdentifyController::subnqn) == 256);
static_assert(offsetof(IdentifyController, psd) == 2048 && std::extent_v<decltype(IdentifyController::psd)> == 32);
static_assert(offsetof(IdentifyController, vs) == 3072 && sizeof(IdentifyController::vs) == 1024);

namespace idctrl {
// SQES / CQES hold log2 of the required (min) and largest (max) entry sizes.
inline constexpr Field8 QES_MIN{0, 0xf};
inline constexpr Field8 QES_MAX{4, 0xf};
inline constexpr Field8 VWC_PRESENT{0, 0x1};
inline constexpr Field32 SGLS_SUPPORT{0, 0x3};  // 0 none, 1 byte aligned, 2 dword aligned
}  // namespace idctrl

enum class IdctrlCmic : uint8_t {
  MULTI_PORT = 0x1,
  MULTI_CONTROLLER = 0x2,
  SRIOV_VIRTUAL_FUNCTION = 0x4,
  ANA_REPORTING = 0x8,
};
enum class IdctrlOacs : uint16_t {
  SECURITY = 0x001,
  FORMAT_NVM = 0x002,
  FIRMWARE = 0x004,
  NAMESPACE_MANAGEMENT = 0x008,
  DEVICE_SELF_TEST = 0x010,
  DIRECTIVES = 0x020,
  NVME_MI = 0x040,
  VIRTUALIZATION_MANAGEMENT = 0x080,
  DOORBELL_BUFFER_CONFIG = 0x100,
};
enum class IdctrlOncs : uint16_t {
  COMPARE = 0x01,
  WRITE_UNCORRECTABLE = 0x02,
  DATASET_MANAGEMENT = 0x04,
  WRITE_ZEROES = 0x08,
  SAVE_SELECT = 0x10,
  RESERVATIONS = 0x20,
  TIMESTAMP = 0x40,
  VERIFY = 0x80,
};
enum class ControllerType : uint8_t { IO = 0x1, DISCOVERY = 0x2, ADMIN = 0x3 };

// UINT64_MAX stands for "no limit" (MDTS 0, or a value too large to shift).
constexpr uint64_t maxTransferBytes(uint8_t mdts, uint64_t minPageSizeBytes) {
  return (mdts == 0 || mdts > 51) ? UINT64_MAX : minPageSizeBytes << mdts;
}

struct IdentifyNamespace {
  uint64_t nsze;
  uint64_t ncap;
  uint64_t nuse;
  uint8_t nsfeat;
  uint8_t nlbaf;  // zero-based
  uint8_t flbas;
  uint8_t mc;
  uint8_t dpc;
  uint8_t dps;
  uint8_t nmic;
  uint8_t rescap;
  uint8_t fpi;
  uint8_t dlfeat;
  uint16_t nawun;
  uint16_t nawupf;
  uint16_t nacwu;
  uint16_t nabsn;
  uint16_t nabo;
  uint16_t nabspf;
  uint16_t noiob;
  uint8_t nvmcap[16];
  uint16_t npwg;
  uint16_t npwa;
  uint16_t npdg;
  uint16_t npda;
  uint16_t nows;
  uint8_t rsvd74[18];
  uint32_t anagrpid;
  uint8_t rsvd96[3];
  uint8_t nsattr;
  uint16_t nvmsetid;
  uint16_t endgid;
  uint8_t nguid[16];
  uint8_t eui64[8];
  uint32_t lbaf[16];  // see namespace lbaf
  uint8_t rsvd192[192];
  uint8_t vs[3712];
};
static_assert(sizeof(IdentifyNamespace) == 4096);
static_assert(offsetof(IdentifyNamespace, nsze) == 0);
static_assert(offsetof(IdentifyNamespace, ncap) == 8);
static_assert(offsetof(IdentifyNamespace, nuse) == 16);
static_assert(offsetof(IdentifyNamespace, nsfeat) == 24);
static_assert(offsetof(IdentifyNamespace, nlbaf) == 25);
static_assert(offsetof(IdentifyNamespace, flbas) == 26);
static_assert(offsetof(IdentifyNamespace, mc) == 27);
static_assert(offsetof(IdentifyNamespace, dpc) == 28);
static_assert(offsetof(IdentifyNamespace, dps) == 29);
static_assert(offsetof(IdentifyNamespace, nmic) == 30);
static_assert(offsetof(IdentifyNamespace, rescap) == 31);
static_assert(offsetof(IdentifyNamespace, fpi) == 32);
static_assert(offsetof(IdentifyNamespace, dlfeat) == 33);
static_assert(offsetof(IdentifyNamespace, nawun) == 34);
static_assert(offsetof(IdentifyNamespace, nawupf) == 36);
static_assert(offsetof(IdentifyNamespace, nacwu) == 38);
static_assert(offsetof(IdentifyNamespace, nabsn) == 40);
static_assert(offsetof(IdentifyNamespace, nabo) == 42);
static_assert(offsetof(IdentifyNamespace, nabspf) == 44);
static_assert(offsetof(IdentifyNamespace, noiob) == 46);
static_assert(offsetof(IdentifyNamespace, nvmcap) == 48 && sizeof(IdentifyNamespace::nvmcap) == 16);
static_assert(offsetof(IdentifyNamespace, npwg) == 64);
static_assert(offsetof(IdentifyNamespace, npwa) == 66);
static_assert(offsetof(IdentifyNamespace, npdg) == 68);
static_assert(offsetof(IdentifyNamespace, npda) == 70);
static_assert(offsetof(IdentifyNamespace, nows) == 72);
static_assert(offsetof(IdentifyNamespace, anagrpid) == 92);
static_assert(offsetof(IdentifyNamespace, nsattr) == 99);
static_assert(offsetof(IdentifyNamespace, nvmsetid) == 100);
static_assert(offsetof(IdentifyNamespace, endgid) == 102);
static_assert(offsetof(IdentifyNamespace, nguid) == 104 && sizeof(IdentifyNamespace::nguid) == 16);
static_assert(offsetof(IdentifyNamespace, eui64) == 120 && sizeof(IdentifyNamespace::eui64) == 8);
static_assert(offsetof(IdentifyNamespace, lbaf) == 128 && std::extent_v<decltype(IdentifyNamespace::lbaf)> == 16);
static_assert(sizeof(IdentifyNamespace::lbaf[0]) == 4);
static_assert(offsetof(IdentifyNamespace, vs) == 384 && sizeof(IdentifyNamespace::vs) == 3712);

namespace idns {
inline constexpr Field8 NSFEAT_THIN_PROVISIONING{0, 0x1};
inline constexpr Field8 FLBAS_FORMAT{0, 0xf};
inline constexpr Field8 FLBAS_EXTENDED{4, 0x1};  // metadata interleaved with data
inline constexpr Field8 DPS_PIT{0, 0x7};
inline constexpr Field8 DPS_FIRST{3, 0x1};
inline constexpr Field8 NMIC_SHARED{0, 0x1};
}  // namespace idns

namespace lbaf {
inline constexpr Field32 MS{0, 0xffff};   // metadata bytes per block
inline constexpr Field32 LBADS{16, 0xff};  // log2 of data bytes per block
inline constexpr Field32 RP{24, 0x3};
}  // namespace lbaf

struct NamespaceList {
  uint32_t ids[1024];  // ascending, zero-terminated
};
static_assert(sizeof(NamespaceList) == 4096);

struct NsIdDescriptorHeader {
  uint8_t nidt;
  uint8_t nidl;
  uint8_t rsvd2[2];
};
static_assert(sizeof(NsIdDescriptorHeader) == 4);
static_assert(offsetof(NsIdDescriptorHeader, nidt) == 0);
static_assert(offsetof(NsIdDescriptorHeader, nidl) == 1);
inline constexpr uint32_t NS_ID_DESC_LIST_SIZE_BYTES = 4096;
enum class Nidt : uint8_t { EUI64 = 0x1, NGUID = 0x2, UUID = 0x3, CSI = 0x4 };
enum class NidtLengthBytes : uint8_t { EUI64 = 8, NGUID = 16, UUID = 16, CSI = 1 };

struct ControllerList {
  uint16_t count;
  uint16_t ids[2047];
};
static_assert(sizeof(ControllerList) == 4096);
static_assert(offsetof(ControllerList, count) == 0);
static_assert(offsetof(ControllerList, ids) == 2);

struct SecondaryControllerEntry {
  uint16_t scid;
  uint16_t pcid;
  uint8_t scs;  // bit 0: online
  uint8_t rsvd5[3];
  uint16_t vfn;
  uint16_t nvq;
  uint16_t nvi;
  uint8_t rsvd14[18];
};
static_assert(sizeof(SecondaryControllerEntry) == 32);
static_assert(offsetof(SecondaryControllerEntry, scid) == 0);
static_assert(offsetof(SecondaryControllerEntry, pcid) == 2);
static_assert(offsetof(SecondaryControllerEntry, scs) == 4);
static_assert(offsetof(SecondaryControllerEntry, vfn) == 8);
static_assert(offsetof(SecondaryControllerEntry, nvq) == 10);
static_assert(offsetof(SecondaryControllerEntry, nvi) == 12);

struct SecondaryControllerList {
  uint8_t numid;
  uint8_t rsvd1[31];
  SecondaryControllerEntry entries[127];
};
static_assert(sizeof(SecondaryControllerList) == 4096);
static_assert(offsetof(SecondaryControllerList, numid) == 0);
static_assert(offsetof(SecondaryControllerList, entries) == 32);

namespace seclist {
inline constexpr Field8 ENTRY_SCS_ONLINE{0, 0x1};
}  // namespace seclist

struct PrimaryControllerCaps {
  uint16_t cntlid;
  uint16_t portid;
  uint8_t crt;
  uint8_t rsvd5[27];
  uint32_t vqfrt;
  uint32_t vqrfa;
  uint16_t vqrfap;
  uint16_t vqprt;
  uint16_t vqfrsm;
  uint16_t vqgran;
  uint8_t rsvd48[16];
  uint32_t vifrt;
  uint32_t virfa;
  uint16_t virfap;
  uint16_t viprt;
  uint16_t vifrsm;
  uint16_t vigran;
  uint8_t rsvd80[4016];
};
static_assert(sizeof(PrimaryControllerCaps) == 4096);
static_assert(offsetof(PrimaryControllerCaps, cntlid) == 0);
static_assert(offsetof(PrimaryControllerCaps, portid) == 2);
static_assert(offsetof(PrimaryControllerCaps, crt) == 4);
static_assert(offsetof(PrimaryControllerCaps, vqfrt) == 32);
static_assert(offsetof(PrimaryControllerCaps, vqrfa) == 36);
static_assert(offsetof(PrimaryControllerCaps, vqrfap) == 40);
static_assert(offsetof(PrimaryControllerCaps, vqprt) == 42);
static_assert(offsetof(PrimaryControllerCaps, vqfrsm) == 44);
static_assert(offsetof(PrimaryControllerCaps, vqgran) == 46);
static_assert(offsetof(PrimaryControllerCaps, vifrt) == 64);
static_assert(offsetof(PrimaryControllerCaps, virfa) == 68);
static_assert(offsetof(PrimaryControllerCaps, virfap) == 72);
static_assert(offsetof(PrimaryControllerCaps, viprt) == 74);
static_assert(offsetof(PrimaryControllerCaps, vifrsm) == 76);
static_assert(offsetof(PrimaryControllerCaps, vigran) == 78);
enum class PricapCrt : uint8_t { VQ = 0x1, VI = 0x2 };

// ---------------------------------------------------------------------------
// Namespace Management / Attachment, Virtualization Management

namespace ns_mgmt {
inline constexpr Field32 CDW10_SEL{0, 0xf};  // result DW0: NSID of a created namespace
}  // namespace ns_mgmt
enum class NsManagementSel : uint8_t { CREATE = 0x0, DELETE = 0x1 };

namespace ns_attach {
inline constexpr Field32 CDW10_SEL{0, 0xf};  // data: ControllerList
}  // namespace ns_attach
enum class NsAttachmentSel : uint8_t { ATTACH = 0x0, DETACH = 0x1 };

namespace virt_mgmt {
inline constexpr Field32 CDW10_ACT{0, 0xf};
inline constexpr Field32 CDW10_RT{8, 0x7};
inline constexpr Field32 CDW10_CNTLID{16, 0xffff};
inline constexpr Field32 CDW11_NR{0, 0xffff};
}  // namespace virt_mgmt
enum class VirtMgmtAction : uint8_t {
  PRIMARY_FLEXIBLE_ALLOCATION = 0x1,
  SECONDARY_OFFLINE = 0x7,
  SECONDARY_ASSIGN = 0x8,
  SECONDARY_ONLINE = 0x9,
};
enum class VirtResourceType : uint8_t { VQ = 0x0, VI = 0x1 };

// ---------------------------------------------------------------------------
// Log pages

namespace get_log_page {
inline constexpr Field32 CDW10_LID{0, 0xff};
inline constexpr Field32 CDW10_LSP{8, 0x7f};  // 14:8 since NVMe 2.0, 11:8 before
inline constexpr Field32 CDW10_RAE{15, 0x1};
inline constexpr Field32 CDW10_NUMDL{16, 0xffff};  // zero-based dwords, low half
inline constexpr Field32 CDW11_NUMDU{0, 0xffff};
inline constexpr Field32 CDW11_LSI{16, 0xffff};
}  // namespace get_log_page

enum class LogPageId : uint8_t {
  ERROR = 0x01,
  SMART_HEALTH = 0x02,
  FIRMWARE_SLOT = 0x03,
  CHANGED_NS_LIST = 0x04,
  COMMANDS_EFFECTS = 0x05,
};

struct ErrorLogEntry {
  uint64_t error_count;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // same layout as Cqe::status
  uint16_t param_error_location;
  uint64_t lba;
  uint32_t nsid;
  uint8_t vs_info;
  uint8_t trtype;
  uint8_t rsvd30[2];
  uint64_t command_specific;
  uint16_t trtype_specific;
  uint8_t rsvd42[22];
};
static_assert(sizeof(ErrorLogEntry) == 64);
static_assert(offsetof(ErrorLogEntry, error_count) == 0);
static_assert(offsetof(ErrorLogEntry, sqid) == 8);
static_assert(offsetof(ErrorLogEntry, cid) == 10);
static_assert(offsetof(ErrorLogEntry, status) == 12);
static_assert(offsetof(ErrorLogEntry, param_error_location) == 14);
static_assert(offsetof(ErrorLogEntry, lba) == 16);
static_assert(offsetof(ErrorLogEntry, nsid) == 24);
static_assert(offsetof(ErrorLogEntry, vs_info) == 28);
static_assert(offsetof(ErrorLogEntry, trtype) == 29);
static_assert(offsetof(ErrorLogEntry, command_specific) == 32);
static_assert(offsetof(ErrorLogEntry, trtype_specific) == 40);

// Counters are 128-bit little-endian; data units count thousands of 512-byte blocks.
struct OFFPATH_NVME_PACKED SmartHealthLog {
  uint8_t critical_warning;
  uint16_t composite_temperature;  // Kelvin
  uint8_t available_spare;
  uint8_t available_spare_threshold;
  uint8_t percentage_used;
  uint8_t endurance_group_warning;
  uint8_t rsvd7[25];
  uint8_t data_units_read[16];
  uint8_t data_units_written[16];
  uint8_t host_read_commands[16];
  uint8_t host_write_commands[16];
  uint8_t controller_busy_time[16];  // minutes
  uint8_t power_cycles[16];
  uint8_t power_on_hours[16];
  uint8_t unsafe_shutdowns[16];
  uint8_t media_errors[16];
  uint8_t num_error_log_entries[16];
  uint32_t warning_temp_time;  // minutes
  uint32_t critical_temp_time;
  uint16_t temp_sensor[8];  // Kelvin
  uint8_t rsvd216[296];
};
static_assert(sizeof(SmartHealthLog) == 512);
static_assert(offsetof(SmartHealthLog, critical_warning) == 0);
static_assert(offsetof(SmartHealthLog, composite_temperature) == 1);
static_assert(offsetof(SmartHealthLog, available_spare) == 3);
static_assert(offsetof(SmartHealthLog, available_spare_threshold) == 4);
static_assert(offsetof(SmartHealthLog, percentage_used) == 5);
static_assert(offsetof(SmartHealthLog, endurance_group_warning) == 6);
static_assert(offsetof(SmartHealthLog, data_units_read) == 32 && sizeof(SmartHealthLog::data_units_read) == 16);
static_assert(offsetof(SmartHealthLog, data_units_written) == 48);
static_assert(offsetof(SmartHealthLog, host_read_commands) == 64);
static_assert(offsetof(SmartHealthLog, host_write_commands) == 80);
static_assert(offsetof(SmartHealthLog, controller_busy_time) == 96);
static_assert(offsetof(SmartHealthLog, power_cycles) == 112);
static_assert(offsetof(SmartHealthLog, power_on_hours) == 128);
static_assert(offsetof(SmartHealthLog, unsafe_shutdowns) == 144);
static_assert(offsetof(SmartHealthLog, media_errors) == 160);
static_assert(offsetof(SmartHealthLog, num_error_log_entries) == 176);
static_assert(offsetof(SmartHealthLog, warning_temp_time) == 192);
static_assert(offsetof(SmartHealthLog, critical_temp_time) == 196);
static_assert(offsetof(SmartHealthLog, temp_sensor) == 200);
inline constexpr uint32_t SMART_DATA_UNIT_BYTES = 512000;

// ---------------------------------------------------------------------------
// Features, asynchronous events, Format NVM

namespace features {
inline constexpr Field32 CDW10_FID{0, 0xff};
}  // namespace features
namespace set_features {
inline constexpr Field32 CDW10_SV{31, 0x1};
}  // namespace set_features
namespace get_features {
inline constexpr Field32 CDW10_SEL{8, 0x7};
}  // namespace get_features

enum class FeatureId : uint8_t {
  ARBITRATION = 0x01,
  POWER_MANAGEMENT = 0x02,
  TEMPERATURE_THRESHOLD = 0x04,
  ERROR_RECOVERY = 0x05,
  VOLATILE_WRITE_CACHE = 0x06,
  NUMBER_OF_QUEUES = 0x07,
  INTERRUPT_COALESCING = 0x08,
  INTERRUPT_VECTOR_CONFIG = 0x09,
  ASYNC_EVENT_CONFIG = 0x0b,
  KEEP_ALIVE_TIMER = 0x0f,
};
enum class FeatureSelect : uint8_t { CURRENT = 0x0, DEFAULT = 0x1, SAVED = 0x2, SUPPORTED_CAPABILITIES = 0x3 };

namespace number_of_queues {
inline constexpr Field32 NSQR{0, 0xffff};  // zero-based
inline constexpr Field32 NCQR{16, 0xffff};  // zero-based
}  // namespace number_of_queues

namespace interrupt_coalescing {
inline constexpr Field32 THR{0, 0xff};  // zero-based entries
inline constexpr Field32 TIME{8, 0xff};
}  // namespace interrupt_coalescing
inline constexpr uint32_t INTERRUPT_COALESCING_TIME_UNIT_US = 100;

namespace volatile_write_cache {
inline constexpr Field32 WCE{0, 0x1};
}  // namespace volatile_write_cache

namespace aer {
inline constexpr Field32 TYPE{0, 0x7};
inline constexpr Field32 INFO{8, 0xff};
inline constexpr Field32 LOG_PAGE{16, 0xff};
}  // namespace aer
enum class AsyncEventType : uint8_t {
  ERROR = 0x0,
  SMART_HEALTH = 0x1,
  NOTICE = 0x2,
  IO_COMMAND_SET = 0x6,
  VENDOR_SPECIFIC = 0x7,
};
enum class AsyncEventNotice : uint8_t {
  NAMESPACE_ATTRIBUTE_CHANGED = 0x0,
  FIRMWARE_ACTIVATION_STARTING = 0x1,
  TELEMETRY_LOG_CHANGED = 0x2,
  ANA_CHANGE = 0x3,
};

namespace format_nvm {
inline constexpr Field32 CDW10_LBAF{0, 0xf};
inline constexpr Field32 CDW10_MSET{4, 0x1};
inline constexpr Field32 CDW10_PI{5, 0x7};
inline constexpr Field32 CDW10_PIL{8, 0x1};
inline constexpr Field32 CDW10_SES{9, 0x7};
}  // namespace format_nvm

// Commands Supported and Effects log (LID 05h): one entry per admin opcode,
// then one per I/O opcode.
struct CommandsEffectsLog {
  uint32_t acs[256];
  uint32_t iocs[256];
  uint8_t reserved[2048];
};
static_assert(sizeof(CommandsEffectsLog) == 4096);
static_assert(offsetof(CommandsEffectsLog, iocs) == 1024);

// Bits of a Commands Supported and Effects entry.
enum class CommandEffect : uint32_t { CSUPP = 0x1, LBCC = 0x2, NCC = 0x4, NIC = 0x8, CCC = 0x10 };

// Format NVM's Secure Erase Settings (CDW10.SES).
enum class FormatSes : uint8_t { NONE = 0x0, USER_DATA_ERASE = 0x1, CRYPTOGRAPHIC_ERASE = 0x2 };

}  // namespace offpath::nvme
