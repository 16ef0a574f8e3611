// NVM command set: Read, Write (FUA), Flush, Compare, Write Zeroes, Dataset
// Management (deallocate). Validation order follows the spec's precedence:
// opcode, namespace, LBA range, transfer size, data pointer.
#include <cstring>

#include "commands.h"
#include "offpath/nvme_spec.h"
#include "subsystem.h"

namespace offpath::emu {

namespace spec = offpath::nvme;
using Completion = Controller::Completion;
using Command = Controller::Command;

class IoCommands::Handler {
 public:
  Handler(Controller& c, const Command& command)
      : c_(c), sqe_(*reinterpret_cast<const spec::Sqe*>(command.bytes)), store_(c.subsystem_->store()) {}

  Completion Run() {
    if (spec::sqe::FUSE.get(sqe_.flags) != 0) return Fail(status::kInvalidField, 1);
    using Op = spec::NvmOpcode;
    auto op = static_cast<Op>(sqe_.opc);
    // A read-only VSIC: checked after the opcode is known to exist, before
    // anything else, like the spec's write-protected namespace.
    if (c_.read_only() && (op == Op::WRITE || op == Op::WRITE_ZEROES || op == Op::DATASET_MANAGEMENT) &&
        Namespace() != nullptr)
      return Fail(StoreStatus(spec::GenericStatus::NS_WRITE_PROTECTED), kSqeOpcodeOffset);
    switch (op) {
      case Op::READ:
      case Op::WRITE:
      case Op::COMPARE: return ReadWriteCompare(static_cast<Op>(sqe_.opc));
      case Op::FLUSH: return Flush();
      case Op::WRITE_ZEROES: return WriteZeroes();
      case Op::DATASET_MANAGEMENT: return DatasetManagement();
      default: return Fail(status::kInvalidOpcode, 0);
    }
  }

 private:
  static Completion Fail(Status status, uint16_t location, uint64_t lba = 0) {
    Completion completion;
    completion.status = status;
    // Every rejection below fails the same way on retry, except a full pool
    // (space may be freed) and media errors (the spec leaves it to the device).
    completion.dnr = status != status::kCapacityExceeded && status::TypeOf(status) != 2;
    completion.parameter_location = location;
    completion.lba = lba;
    return completion;
  }

  const NamespaceView* Namespace() const { return c_.FindNamespace(sqe_.nsid); }

  uint64_t Slba() const { return sqe_.cdw10 | (uint64_t{sqe_.cdw11} << 32); }

  bool InRange(const NamespaceView& ns, uint64_t slba, uint64_t blocks) const {
    return slba < ns.size_blocks && blocks <= ns.size_blocks - slba;
  }

  Completion Done(Status status, uint64_t lba) {
    if (status == status::kSuccess) return Completion{};
    if (status::TypeOf(status) == 2) c_.stats_.media_errors++;
    return Fail(status, kSqeCdw10Offset, lba);
  }

  Completion ReadWriteCompare(spec::NvmOpcode op) {
    const NamespaceView* ns = Namespace();
    if (ns == nullptr) return Fail(status::kInvalidNamespace, kSqeNsidOffset);
    uint64_t slba = Slba();
    uint32_t blocks = spec::rw::CDW12_NLB.get(sqe_.cdw12) + 1;
    if (!InRange(*ns, slba, blocks)) return Fail(status::kLbaOutOfRange, kSqeCdw10Offset, slba);
    uint64_t length = uint64_t{blocks} << ns->block_shift;
    if (length > kMaxTransferBytes) return Fail(status::kInvalidField, kSqeCdw12Offset, slba);
    Status status = c_.MapData(sqe_, length, false, &c_.transfer_);
    if (status != status::kSuccess) return Fail(status, kSqeDptrOffset, slba);
    c_.iops_bucket_.Spend(1);
    c_.bytes_bucket_.Spend(static_cast<double>(length));
    const Transfer& t = c_.transfer_;
    if (op == spec::NvmOpcode::READ) {
      c_.stats_.read_commands++;
      c_.stats_.read_bytes += length;
      return Done(store_.Read(ns->nsid, slba, blocks, t.segments, t.count), slba);
    }
    if (op == spec::NvmOpcode::WRITE) {
      c_.stats_.write_commands++;
      c_.stats_.written_bytes += length;
      // With the volatile write cache disabled every write is write-through.
      bool fua = spec::rw::CDW12_FUA.get(sqe_.cdw12) || !c_.volatile_write_cache_enabled_;
      return Done(store_.Write(ns->nsid, slba, blocks, t.segments, t.count, fua), slba);
    }
    // Compare: read the blocks into scratch and compare with the host's data.
    c_.stats_.read_commands++;
    Segment scratch{c_.compare_buffer_.data(), static_cast<size_t>(length)};
    status = store_.Read(ns->nsid, slba, blocks, &scratch, 1);
    if (status != status::kSuccess) return Done(status, slba);
    uint64_t offset = 0;
    for (uint32_t i = 0; i < t.count; i++) {
      if (memcmp(t.segments[i].data, scratch.data + offset, t.segments[i].length_bytes) != 0)
        return Fail(status::kCompareFailure, kSqeDptrOffset, slba);
      offset += t.segments[i].length_bytes;
    }
    return Completion{};
  }

  Completion Flush() {
    // NSID FFFFFFFFh flushes every namespace (Identify VWC bits 2:1 say so).
    if (sqe_.nsid != spec::NSID_BROADCAST && Namespace() == nullptr) return Fail(status::kInvalidNamespace, kSqeNsidOffset);
    return Done(store_.Flush(), 0);
  }

  Completion WriteZeroes() {
    const NamespaceView* ns = Namespace();
    if (ns == nullptr) return Fail(status::kInvalidNamespace, kSqeNsidOffset);
    uint64_t slba = Slba();
    uint32_t blocks = spec::rw::CDW12_NLB.get(sqe_.cdw12) + 1;
    if (!InRange(*ns, slba, blocks)) return Fail(status::kLbaOutOfRange, kSqeCdw10Offset, slba);
    bool fua = spec::rw::CDW12_FUA.get(sqe_.cdw12) || !c_.volatile_write_cache_enabled_;
    c_.iops_bucket_.Spend(1);
    c_.stats_.write_commands++;
    return Done(store_.WriteZeroes(ns->nsid, slba, blocks, fua), slba);
  }

  Completion DatasetManagement() {
    const NamespaceView* ns = Namespace();
    if (ns == nullptr) return Fail(status::kInvalidNamespace, kSqeNsidOffset);
    uint32_t ranges = spec::dsm::CDW10_NR.get(sqe_.cdw10) + 1;
    uint64_t length = uint64_t{ranges} * sizeof(spec::DsmRange);
    Status status = c_.MapData(sqe_, length, false, &c_.transfer_);
    if (status != status::kSuccess) return Fail(status, kSqeDptrOffset);
    c_.iops_bucket_.Spend(1);
    // Copy the range list out of host memory before checking it.
    CopyFromTransfer(c_.transfer_, c_.page_, length);
    const auto* list = reinterpret_cast<const spec::DsmRange*>(c_.page_);
    // Attribute hints (IDR/IDW) carry no obligation; only Deallocate acts.
    if (!spec::dsm::CDW11_AD.get(sqe_.cdw11)) return Completion{};
    for (uint32_t i = 0; i < ranges; i++)
      if (!InRange(*ns, list[i].slba, list[i].nlb)) return Fail(status::kLbaOutOfRange, kSqeDptrOffset, list[i].slba);
    for (uint32_t i = 0; i < ranges; i++) {
      if (list[i].nlb == 0) continue;
      status = store_.Deallocate(ns->nsid, list[i].slba, list[i].nlb);
      if (status != status::kSuccess) return Done(status, list[i].slba);
    }
    return Completion{};
  }

  Controller& c_;
  const spec::Sqe& sqe_;
  Store& store_;
};

Completion IoCommands::Run(Controller& controller, const Command& command) {
  return Handler(controller, command).Run();
}

}  // namespace offpath::emu
