// Command handlers: one function per opcode, each validating its fields in
// order and returning the spec's status (with Do Not Retry where a retry
// cannot succeed) and the SQE byte offset of the field at fault.
#pragma once

#include "controller.h"

namespace offpath::emu {

// Friends of Controller; their nested Handler classes do the work.
class AdminCommands {
 public:
  static Controller::Completion Run(Controller& controller, const Controller::Command& command);
  class Handler;
};

class IoCommands {
 public:
  static Controller::Completion Run(Controller& controller, const Controller::Command& command);
  class Handler;
};

// Field offsets inside the SQE, for the Error Information log.
constexpr uint16_t kSqeNsidOffset = 4;
constexpr uint16_t kSqeDptrOffset = 24;
constexpr uint16_t kSqeCdw10Offset = 40;
constexpr uint16_t kSqeCdw11Offset = 44;
constexpr uint16_t kSqeCdw12Offset = 48;
constexpr uint16_t kSqeFlagsOffset = 1;
constexpr uint16_t kSqeOpcodeOffset = 0;

// Vendor-specific admin commands (docs/emulator.md): what NVMe lacks and a
// storage control plane needs. PF only.
enum class VendorOpcode : uint8_t {
  RESIZE_NAMESPACE = 0xc0,       // NSID; CDW10..11 = new size in blocks
  SET_CONTROLLER_LIMITS = 0xc1,  // CDW10 15:0 = CNTLID; CDW11 = IOPS; CDW12 = KiB/s (0 = unlimited)
  GET_CONTROLLER_LIMITS = 0xc2,  // CDW10 15:0 = CNTLID; DW0 = IOPS, DW1 = KiB/s
  SET_CONTROLLER_ACCESS = 0xc3,  // CDW10 15:0 = CNTLID; CDW11 bit 0 = read-only (writes fail NS Write Protected)
};

}  // namespace offpath::emu
