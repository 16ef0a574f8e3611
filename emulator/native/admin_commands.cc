// Admin command set: Identify, queues, features, logs, asynchronous events,
// and on the PF only the SR-IOV management commands (Namespace Management,
// Namespace Attachment, Virtualization Management) and offpath's vendor
// commands.
#include <algorithm>
#include <cstring>

#include "commands.h"
#include "offpath/nvme_spec.h"
#include "subsystem.h"

namespace offpath::emu {

namespace spec = offpath::nvme;
using Completion = Controller::Completion;
using Command = Controller::Command;

namespace {

constexpr uint8_t kAsyncEventLimit = 4;  // AERL + 1
constexpr uint8_t kAbortLimit = 4;       // ACL + 1
constexpr uint16_t kWarningTemperatureKelvin = 343;
constexpr uint16_t kCriticalTemperatureKelvin = 373;
constexpr uint16_t kCompositeTemperatureKelvin = 313;
constexpr uint32_t kAsyncEventConfigDefault = 0x100;
constexpr char kFirmwareRevision[] = "0.1.0";

Completion Fail(Status status, bool dnr, uint16_t location = 0xffff) {
  Completion completion;
  completion.status = status;
  completion.dnr = dnr;
  completion.parameter_location = location;
  return completion;
}

Completion Ok(uint32_t dw0 = 0, uint32_t dw1 = 0) {
  Completion completion;
  completion.dw0 = dw0;
  completion.dw1 = dw1;
  return completion;
}

// Space-padded ASCII, as Identify strings are.
void PutAscii(char* field, size_t size_bytes, const std::string& text) {
  memset(field, ' ', size_bytes);
  memcpy(field, text.data(), std::min(size_bytes, text.size()));
}

void Put128(uint8_t* field, uint64_t value) {
  memset(field, 0, 16);
  memcpy(field, &value, sizeof value);
}

uint8_t FormatIndex(uint32_t block_bytes) { return block_bytes == 4096 ? 1 : 0; }

void FillIdentifyNamespace(const NamespaceInfo& info, spec::IdentifyNamespace* id) {
  id->nsze = info.size_blocks;
  id->ncap = info.size_blocks;
  id->nuse = info.allocated_blocks;
  id->nsfeat = spec::idns::NSFEAT_THIN_PROVISIONING.put(1);
  id->nlbaf = 1;  // two formats: 512 B and 4 KiB, no metadata
  id->flbas = spec::idns::FLBAS_FORMAT.put(FormatIndex(info.block_bytes));
  id->lbaf[0] = spec::lbaf::LBADS.put(9);
  id->lbaf[1] = spec::lbaf::LBADS.put(12);
  // DLFEAT: deallocated blocks read as zeroes (001b); Write Zeroes may deallocate (bit 3).
  id->dlfeat = 0x09;
  memcpy(id->nguid, info.nguid, sizeof id->nguid);
}

// Every LBA format the emulator offers, for Identify Namespace with NSID FFFFFFFFh.
void FillCommonNamespace(spec::IdentifyNamespace* id) {
  id->nlbaf = 1;
  id->lbaf[0] = spec::lbaf::LBADS.put(9);
  id->lbaf[1] = spec::lbaf::LBADS.put(12);
  id->dlfeat = 0x09;
}

}  // namespace

class AdminCommands::Handler {
 public:
  Handler(Controller& c, const Command& command)
      : c_(c), sqe_(*reinterpret_cast<const spec::Sqe*>(command.bytes)), subsystem_(*c.subsystem_) {}

  Completion Run() {
    if (spec::sqe::FUSE.get(sqe_.flags) != 0) return Fail(status::kInvalidField, true, kSqeFlagsOffset);
    if (spec::sqe::PSDT.get(sqe_.flags) != 0) return Fail(status::kInvalidField, true, kSqeFlagsOffset);
    c_.stats_.admin_commands++;
    using Op = spec::AdminOpcode;
    switch (static_cast<Op>(sqe_.opc)) {
      case Op::IDENTIFY: return Identify();
      case Op::CREATE_IO_CQ: return CreateCq();
      case Op::CREATE_IO_SQ: return CreateSq();
      case Op::DELETE_IO_SQ: return DeleteSq();
      case Op::DELETE_IO_CQ: return DeleteCq();
      case Op::SET_FEATURES: return SetFeatures();
      case Op::GET_FEATURES: return GetFeatures();
      case Op::GET_LOG_PAGE: return GetLogPage();
      case Op::ASYNC_EVENT_REQUEST: return AsyncEventRequest();
      case Op::ABORT: return Abort();
      case Op::NAMESPACE_MANAGEMENT: return c_.primary() ? NamespaceManagement() : InvalidOpcode();
      case Op::NAMESPACE_ATTACHMENT: return c_.primary() ? NamespaceAttachment() : InvalidOpcode();
      case Op::VIRTUALIZATION_MANAGEMENT: return c_.primary() ? VirtualizationManagement() : InvalidOpcode();
      default: break;
    }
    if (c_.primary()) {
      switch (static_cast<VendorOpcode>(sqe_.opc)) {
        case VendorOpcode::RESIZE_NAMESPACE: return ResizeNamespace();
        case VendorOpcode::SET_CONTROLLER_LIMITS: return SetControllerLimits();
        case VendorOpcode::GET_CONTROLLER_LIMITS: return GetControllerLimits();
        case VendorOpcode::SET_CONTROLLER_ACCESS: return SetControllerAccess();
      }
    }
    return InvalidOpcode();
  }

 private:
  Completion InvalidOpcode() { return Fail(status::kInvalidOpcode, true, kSqeOpcodeOffset); }

  // Copies `length` bytes of page_ to the host buffer the command names.
  Completion ToHost(uint64_t length_bytes, uint32_t dw0 = 0) {
    Status status = c_.MapData(sqe_, length_bytes, true, &c_.transfer_);
    if (status != status::kSuccess) return Fail(status, true, kSqeDptrOffset);
    CopyToTransfer(c_.transfer_, c_.page_, length_bytes);
    return Ok(dw0);
  }

  // Reads `length` bytes from the host buffer into page_.
  Status FromHost(uint64_t length_bytes) {
    Status status = c_.MapData(sqe_, length_bytes, true, &c_.transfer_);
    if (status == status::kSuccess) CopyFromTransfer(c_.transfer_, c_.page_, length_bytes);
    return status;
  }

  bool ValidNsid(uint32_t nsid) const { return nsid >= 1 && nsid <= kMaxNamespaces; }

  // --- Identify -----------------------------------------------------------

  Completion Identify() {
    memset(c_.page_, 0, sizeof c_.page_);
    uint32_t nsid = sqe_.nsid;
    uint16_t cntid = static_cast<uint16_t>(spec::identify::CDW10_CNTID.get(sqe_.cdw10));
    using Cns = spec::Cns;
    auto cns = static_cast<Cns>(spec::identify::CDW10_CNS.get(sqe_.cdw10));
    bool primary_only = cns == Cns::ALLOCATED_NS_LIST || cns == Cns::ALLOCATED_NS ||
                        cns == Cns::NS_ATTACHED_CTRL_LIST || cns == Cns::CTRL_LIST ||
                        cns == Cns::PRIMARY_CTRL_CAPS || cns == Cns::SECONDARY_CTRL_LIST;
    if (primary_only && !c_.primary()) return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    switch (cns) {
      case Cns::CTRL:
        IdentifyController(reinterpret_cast<spec::IdentifyController*>(c_.page_));
        break;
      case Cns::NS:
      case Cns::ALLOCATED_NS: {
        auto* id = reinterpret_cast<spec::IdentifyNamespace*>(c_.page_);
        if (nsid == spec::NSID_BROADCAST && cns == Cns::NS) {
          FillCommonNamespace(id);
          break;
        }
        if (!ValidNsid(nsid)) return Fail(status::kInvalidNamespace, true, kSqeNsidOffset);
        NamespaceInfo info;
        // An inactive (not attached) namespace reads as zeroes, not an error.
        bool visible = subsystem_.store().GetNamespace(nsid, &info) &&
                       (cns == Cns::ALLOCATED_NS || c_.FindNamespace(nsid) != nullptr);
        if (visible) FillIdentifyNamespace(info, id);
        break;
      }
      case Cns::ACTIVE_NS_LIST:
      case Cns::ALLOCATED_NS_LIST: {
        if (nsid >= 0xfffffffe) return Fail(status::kInvalidNamespace, true, kSqeNsidOffset);
        auto* list = reinterpret_cast<spec::NamespaceList*>(c_.page_);
        size_t count = 0;
        for (const NamespaceInfo& info : subsystem_.store().Namespaces()) {
          if (info.nsid <= nsid || count == 1024) continue;
          if (cns == Cns::ACTIVE_NS_LIST && c_.FindNamespace(info.nsid) == nullptr) continue;
          list->ids[count++] = info.nsid;
        }
        std::sort(list->ids, list->ids + count);
        break;
      }
      case Cns::NS_DESCRIPTOR_LIST: {
        NamespaceInfo info;
        if (!ValidNsid(nsid) || c_.FindNamespace(nsid) == nullptr || !subsystem_.store().GetNamespace(nsid, &info))
          return Fail(status::kInvalidNamespace, true, kSqeNsidOffset);
        uint8_t* at = c_.page_;
        auto put = [&at](spec::Nidt type, const uint8_t* value, uint8_t length) {
          auto* header = reinterpret_cast<spec::NsIdDescriptorHeader*>(at);
          header->nidt = spec::raw(type);
          header->nidl = length;
          memcpy(at + sizeof *header, value, length);
          at += sizeof *header + length;
        };
        const uint8_t nvm_command_set = 0;
        put(spec::Nidt::NGUID, info.nguid, 16);
        put(spec::Nidt::UUID, info.uuid, 16);
        put(spec::Nidt::CSI, &nvm_command_set, 1);
        break;
      }
      case Cns::NS_ATTACHED_CTRL_LIST:
      case Cns::CTRL_LIST: {
        auto* list = reinterpret_cast<spec::ControllerList*>(c_.page_);
        NamespaceInfo info;
        if (cns == Cns::NS_ATTACHED_CTRL_LIST && (!ValidNsid(nsid) || !subsystem_.store().GetNamespace(nsid, &info)))
          return Fail(status::kInvalidNamespace, true, kSqeNsidOffset);
        for (uint16_t id = cntid; id < subsystem_.controller_count(); id++) {
          if (cns == Cns::NS_ATTACHED_CTRL_LIST &&
              std::find(info.attached_controllers.begin(), info.attached_controllers.end(), id) ==
                  info.attached_controllers.end())
            continue;
          list->ids[list->count++] = id;
        }
        break;
      }
      case Cns::PRIMARY_CTRL_CAPS: {
        auto* caps = reinterpret_cast<spec::PrimaryControllerCaps*>(c_.page_);
        caps->cntlid = 0;
        caps->crt = spec::raw(spec::PricapCrt::VQ) | spec::raw(spec::PricapCrt::VI);
        caps->vqfrt = subsystem_.flexible_vq_total();
        caps->vqrfa = subsystem_.assigned_vq();
        caps->vqprt = kMaxQueueId + 1;
        caps->vqfrsm = subsystem_.config().max_vq_per_secondary;
        caps->vqgran = 1;
        caps->vifrt = subsystem_.flexible_vi_total();
        caps->virfa = subsystem_.assigned_vi();
        caps->viprt = kMaxQueueId + 1;
        caps->vifrsm = subsystem_.config().max_vi_per_secondary;
        caps->vigran = 1;
        break;
      }
      case Cns::SECONDARY_CTRL_LIST: {
        auto* list = reinterpret_cast<spec::SecondaryControllerList*>(c_.page_);
        uint8_t count = 0;
        for (uint16_t id = std::max<uint16_t>(cntid, 1); id < subsystem_.controller_count() && count < 127; id++) {
          Controller* secondary = subsystem_.controller(id);
          spec::SecondaryControllerEntry& entry = list->entries[count++];
          entry.scid = id;
          entry.pcid = 0;
          entry.scs = spec::seclist::ENTRY_SCS_ONLINE.put(secondary->online());
          entry.vfn = id;  // VF n is secondary controller n
          entry.nvq = secondary->assigned_vq();
          entry.nvi = secondary->assigned_vi();
        }
        list->numid = count;
        break;
      }
      default:
        return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    }
    return ToHost(spec::IDENTIFY_DATA_SIZE_BYTES);
  }

  void IdentifyController(spec::IdentifyController* id) {
    Store& store = subsystem_.store();
    id->vid = 0;  // no PCI vendor: a software controller
    id->ssvid = 0;
    PutAscii(id->sn, sizeof id->sn, "OFFPATH-EMU-" + std::to_string(c_.cntlid()));
    PutAscii(id->mn, sizeof id->mn, c_.primary() ? "offpath software NVMe PF" : "offpath software VSIC");
    PutAscii(id->fr, sizeof id->fr, kFirmwareRevision);
    id->cmic = spec::raw(spec::IdctrlCmic::MULTI_CONTROLLER) |
               (c_.primary() ? 0 : spec::raw(spec::IdctrlCmic::SRIOV_VIRTUAL_FUNCTION));
    id->mdts = kMdts;
    id->cntlid = c_.cntlid();
    id->ver = 0x00010400;
    id->oaes = 1u << 8;  // Namespace Attribute Notices
    id->cntrltype = spec::raw(spec::ControllerType::IO);
    if (c_.primary())
      id->oacs = spec::raw(spec::IdctrlOacs::NAMESPACE_MANAGEMENT) | spec::raw(spec::IdctrlOacs::VIRTUALIZATION_MANAGEMENT);
    id->acl = kAbortLimit - 1;
    id->aerl = kAsyncEventLimit - 1;
    id->frmw = 0x03;  // one slot, read-only
    id->lpa = 0x02;   // Commands Supported and Effects log
    id->elpe = 63;    // 64 Error Information entries
    id->wctemp = kWarningTemperatureKelvin;
    id->cctemp = kCriticalTemperatureKelvin;
    Put128(id->tnvmcap, store.capacity_bytes());
    Put128(id->unvmcap, store.free_bytes());
    id->sqes = static_cast<uint8_t>(spec::idctrl::QES_MIN.put(spec::SQE_SIZE_LOG2) | spec::idctrl::QES_MAX.put(spec::SQE_SIZE_LOG2));
    id->cqes = static_cast<uint8_t>(spec::idctrl::QES_MIN.put(spec::CQE_SIZE_LOG2) | spec::idctrl::QES_MAX.put(spec::CQE_SIZE_LOG2));
    id->nn = kMaxNamespaces;
    id->oncs = spec::raw(spec::IdctrlOncs::COMPARE) | spec::raw(spec::IdctrlOncs::DATASET_MANAGEMENT) |
               spec::raw(spec::IdctrlOncs::WRITE_ZEROES);
    // VWC: bit 0 present; bits 2:1 = 11b, Flush with NSID FFFFFFFFh supported.
    id->vwc = store.volatile_write_cache() ? 0x07 : 0x06;
    id->sgls = spec::idctrl::SGLS_SUPPORT.put(1);  // SGLs, no alignment requirement
    id->mnan = kMaxNamespaces;
    PutAscii(id->subnqn, sizeof id->subnqn, "nqn.2026-11.dev.offpath:emulator");
    // Unused tail of SUBNQN must be NUL, not spaces.
    for (size_t i = sizeof "nqn.2026-11.dev.offpath:emulator" - 1; i < sizeof id->subnqn; i++) id->subnqn[i] = 0;
  }

  // --- Queues -------------------------------------------------------------

  uint16_t InterruptVectors() const { return c_.primary() ? kMaxQueueId + 1 : c_.assigned_vi_; }

  Completion CreateCq() {
    uint16_t qid = static_cast<uint16_t>(spec::create_io_cq::CDW10_QID.get(sqe_.cdw10));
    uint32_t entries = spec::create_io_cq::CDW10_QSIZE.get(sqe_.cdw10) + 1;
    bool contiguous = spec::create_io_cq::CDW11_PC.get(sqe_.cdw11);
    bool interrupts = spec::create_io_cq::CDW11_IEN.get(sqe_.cdw11);
    uint16_t vector = static_cast<uint16_t>(spec::create_io_cq::CDW11_IV.get(sqe_.cdw11));
    uint64_t base = sqe_.dptr.prp.prp1;
    if (qid == 0 || qid > kMaxQueueId || qid > c_.granted_cq_ || c_.cqs_[qid].exists)
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_QUEUE_IDENTIFIER), true, kSqeCdw10Offset);
    if (entries < 2 || entries > Controller::kMaxQueueEntries)
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_QUEUE_SIZE), true, kSqeCdw10Offset + 2);
    if (!contiguous) return Fail(status::kInvalidField, true, kSqeCdw11Offset);
    if (interrupts && vector >= InterruptVectors())
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_INTERRUPT_VECTOR), true, kSqeCdw11Offset + 2);
    if (base % kPageBytes != 0) return Fail(status::kPrpOffsetInvalid, true, kSqeDptrOffset);
    uint8_t* memory = c_.regions_.Translate(base, uint64_t{entries} * sizeof(spec::Cqe));
    if (memory == nullptr) return Fail(status::kDmaFault, true, kSqeDptrOffset);
    CompletionQueue& cq = c_.cqs_[qid];
    cq = CompletionQueue{};
    cq.exists = true;
    cq.entries = entries;
    cq.base = memory;
    cq.iova = base;
    cq.interrupts = interrupts;
    cq.vector = vector;
    // A new queue starts at head 0 whatever the doorbell held before.
    c_.WriteRegister32(spec::cqHeadDoorbellOffset(qid, 0), 0);
    return Ok();
  }

  Completion CreateSq() {
    uint16_t qid = static_cast<uint16_t>(spec::create_io_sq::CDW10_QID.get(sqe_.cdw10));
    uint32_t entries = spec::create_io_sq::CDW10_QSIZE.get(sqe_.cdw10) + 1;
    bool contiguous = spec::create_io_sq::CDW11_PC.get(sqe_.cdw11);
    uint16_t cqid = static_cast<uint16_t>(spec::create_io_sq::CDW11_CQID.get(sqe_.cdw11));
    uint64_t base = sqe_.dptr.prp.prp1;
    if (qid == 0 || qid > kMaxQueueId || qid > c_.granted_sq_ || c_.sqs_[qid].exists)
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_QUEUE_IDENTIFIER), true, kSqeCdw10Offset);
    if (entries < 2 || entries > Controller::kMaxQueueEntries)
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_QUEUE_SIZE), true, kSqeCdw10Offset + 2);
    if (!contiguous) return Fail(status::kInvalidField, true, kSqeCdw11Offset);
    if (cqid == 0 || cqid > kMaxQueueId || !c_.cqs_[cqid].exists)
      return Fail(StoreStatus(spec::CommandSpecificStatus::COMPLETION_QUEUE_INVALID), true, kSqeCdw11Offset + 2);
    if (base % kPageBytes != 0) return Fail(status::kPrpOffsetInvalid, true, kSqeDptrOffset);
    uint8_t* memory = c_.regions_.Translate(base, uint64_t{entries} * sizeof(spec::Sqe));
    if (memory == nullptr) return Fail(status::kDmaFault, true, kSqeDptrOffset);
    c_.sqs_[qid] = SubmissionQueue{true, cqid, entries, 0, memory, base, UINT32_MAX};
    c_.cqs_[cqid].sq_count++;
    c_.WriteRegister32(spec::sqTailDoorbellOffset(qid, 0), 0);
    return Ok();
  }

  Completion DeleteSq() {
    uint16_t qid = static_cast<uint16_t>(spec::delete_io_queue::CDW10_QID.get(sqe_.cdw10));
    if (qid == 0 || qid > kMaxQueueId || !c_.sqs_[qid].exists)
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_QUEUE_IDENTIFIER), true, kSqeCdw10Offset);
    // Commands execute to completion when fetched, so none is in flight to
    // abort; entries the host queued but we never fetched are dropped.
    c_.cqs_[c_.sqs_[qid].cqid].sq_count--;
    c_.sqs_[qid] = SubmissionQueue{};
    return Ok();
  }

  Completion DeleteCq() {
    uint16_t qid = static_cast<uint16_t>(spec::delete_io_queue::CDW10_QID.get(sqe_.cdw10));
    if (qid == 0 || qid > kMaxQueueId || !c_.cqs_[qid].exists)
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_QUEUE_IDENTIFIER), true, kSqeCdw10Offset);
    if (c_.cqs_[qid].sq_count > 0)
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_QUEUE_DELETION), true, kSqeCdw10Offset);
    c_.cqs_[qid] = CompletionQueue{};
    return Ok();
  }

  // --- Features -----------------------------------------------------------

  uint16_t MaxIoQueues() const {
    // A VF's VQ resources include its admin queue (QEMU behaves the same).
    if (c_.primary()) return kMaxQueueId;
    return c_.assigned_vq_ > 1 ? static_cast<uint16_t>(std::min<uint32_t>(c_.assigned_vq_ - 1, kMaxQueueId)) : 0;
  }

  bool AnyIoQueue() const {
    for (uint16_t qid = 1; qid <= kMaxQueueId; qid++)
      if (c_.sqs_[qid].exists || c_.cqs_[qid].exists) return true;
    return false;
  }

  Completion SetFeatures() {
    using Fid = spec::FeatureId;
    if (spec::set_features::CDW10_SV.get(sqe_.cdw10))
      return Fail(StoreStatus(spec::CommandSpecificStatus::FEATURE_ID_NOT_SAVEABLE), true, kSqeCdw10Offset);
    uint32_t value = sqe_.cdw11;
    switch (static_cast<Fid>(spec::features::CDW10_FID.get(sqe_.cdw10))) {
      case Fid::NUMBER_OF_QUEUES: {
        uint32_t nsqr = spec::number_of_queues::NSQR.get(value);
        uint32_t ncqr = spec::number_of_queues::NCQR.get(value);
        if (nsqr == 0xffff || ncqr == 0xffff) return Fail(status::kInvalidField, true, kSqeCdw11Offset);
        // Only before any I/O queue exists (the spec's "once after reset").
        if (AnyIoQueue()) return Fail(status::kCommandSequenceError, true);
        uint16_t max = MaxIoQueues();
        c_.granted_sq_ = static_cast<uint16_t>(std::min<uint32_t>(nsqr + 1, max));
        c_.granted_cq_ = static_cast<uint16_t>(std::min<uint32_t>(ncqr + 1, max));
        return Ok(NumberOfQueuesValue());
      }
      case Fid::VOLATILE_WRITE_CACHE:
        if (!subsystem_.store().volatile_write_cache()) return Fail(status::kInvalidField, true, kSqeCdw10Offset);
        c_.volatile_write_cache_enabled_ = spec::volatile_write_cache::WCE.get(value);
        // Turning the cache off makes what it held durable now.
        if (!c_.volatile_write_cache_enabled_) subsystem_.store().Flush();
        return Ok();
      case Fid::INTERRUPT_COALESCING:
        c_.coalescing_threshold_ = static_cast<uint8_t>(spec::interrupt_coalescing::THR.get(value));
        c_.coalescing_time_100us_ = static_cast<uint8_t>(spec::interrupt_coalescing::TIME.get(value));
        return Ok();
      case Fid::INTERRUPT_VECTOR_CONFIG: {
        uint32_t vector = value & 0xffff;
        if (vector >= InterruptVectors()) return Fail(status::kInvalidField, true, kSqeCdw11Offset);
        if (vector < 32) {
          uint32_t bit = 1u << vector;
          c_.vector_coalescing_disabled_ = (value >> 16) & 1 ? c_.vector_coalescing_disabled_ | bit
                                                             : c_.vector_coalescing_disabled_ & ~bit;
        }
        return Ok();
      }
      case Fid::ASYNC_EVENT_CONFIG:
        c_.async_event_config_ = value;
        return Ok();
      case Fid::ARBITRATION:
        c_.arbitration_ = value;
        return Ok();
      case Fid::POWER_MANAGEMENT:
        if ((value & 0x1f) != 0) return Fail(status::kInvalidField, true, kSqeCdw11Offset);  // NPSS = 0
        c_.power_state_ = value;
        return Ok();
      case Fid::TEMPERATURE_THRESHOLD:
        c_.temperature_threshold_kelvin_ = static_cast<uint16_t>(value & 0xffff);
        return Ok();
      default:
        return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    }
  }

  uint32_t NumberOfQueuesValue() const {
    uint16_t sq = c_.granted_sq_ ? c_.granted_sq_ : MaxIoQueues();
    uint16_t cq = c_.granted_cq_ ? c_.granted_cq_ : MaxIoQueues();
    return spec::number_of_queues::NSQR.put(sq ? sq - 1 : 0) | spec::number_of_queues::NCQR.put(cq ? cq - 1 : 0);
  }

  Completion GetFeatures() {
    using Fid = spec::FeatureId;
    auto select = static_cast<spec::FeatureSelect>(spec::get_features::CDW10_SEL.get(sqe_.cdw10));
    if (select == spec::FeatureSelect::SUPPORTED_CAPABILITIES) return Ok(0x4);  // changeable, not saveable
    bool current = select == spec::FeatureSelect::CURRENT;
    if (select != spec::FeatureSelect::CURRENT && select != spec::FeatureSelect::DEFAULT &&
        select != spec::FeatureSelect::SAVED)
      return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    switch (static_cast<Fid>(spec::features::CDW10_FID.get(sqe_.cdw10))) {
      case Fid::NUMBER_OF_QUEUES:
        return Ok(NumberOfQueuesValue());
      case Fid::VOLATILE_WRITE_CACHE:
        if (!subsystem_.store().volatile_write_cache()) return Fail(status::kInvalidField, true, kSqeCdw10Offset);
        return Ok(current ? c_.volatile_write_cache_enabled_ : 1);
      case Fid::INTERRUPT_COALESCING:
        return Ok(current ? spec::interrupt_coalescing::THR.put(c_.coalescing_threshold_) |
                                spec::interrupt_coalescing::TIME.put(c_.coalescing_time_100us_)
                          : 0);
      case Fid::INTERRUPT_VECTOR_CONFIG: {
        uint32_t vector = sqe_.cdw11 & 0xffff;
        if (vector >= InterruptVectors()) return Fail(status::kInvalidField, true, kSqeCdw11Offset);
        bool disabled = current && vector < 32 && ((c_.vector_coalescing_disabled_ >> vector) & 1);
        return Ok(vector | (uint32_t{disabled} << 16));
      }
      case Fid::ASYNC_EVENT_CONFIG:
        return Ok(current ? c_.async_event_config_ : kAsyncEventConfigDefault);
      case Fid::ARBITRATION:
        return Ok(current ? c_.arbitration_ : 0);
      case Fid::POWER_MANAGEMENT:
        return Ok(current ? c_.power_state_ : 0);
      case Fid::TEMPERATURE_THRESHOLD:
        return Ok(current ? c_.temperature_threshold_kelvin_ : kWarningTemperatureKelvin);
      default:
        return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    }
  }

  // --- Logs and events ----------------------------------------------------

  Completion GetLogPage() {
    using Lid = spec::LogPageId;
    auto lid = static_cast<Lid>(spec::get_log_page::CDW10_LID.get(sqe_.cdw10));
    bool retain = spec::get_log_page::CDW10_RAE.get(sqe_.cdw10);
    uint64_t dwords = ((uint64_t{spec::get_log_page::CDW11_NUMDU.get(sqe_.cdw11)} << 16) |
                       spec::get_log_page::CDW10_NUMDL.get(sqe_.cdw10)) + 1;
    uint64_t length = dwords * 4;
    uint64_t offset = sqe_.cdw12 | (uint64_t{sqe_.cdw13} << 32);
    if (offset % 4 != 0) return Fail(status::kInvalidField, true, kSqeCdw12Offset);
    if (length > kMaxTransferBytes) return Fail(status::kInvalidField, true, kSqeCdw10Offset + 2);
    memset(c_.page_, 0, sizeof c_.page_);
    uint64_t page_bytes = 0;
    spec::AsyncEventType unmask = spec::AsyncEventType::VENDOR_SPECIFIC;
    switch (lid) {
      case Lid::ERROR: {
        auto* entries = reinterpret_cast<spec::ErrorLogEntry*>(c_.page_);
        size_t i = 0;
        for (const ErrorEntry& e : c_.error_log_) {
          spec::ErrorLogEntry& out = entries[i++];
          out.error_count = e.error_count;
          out.sqid = e.sqid;
          out.cid = e.cid;
          out.status = e.status;
          out.param_error_location = e.parameter_location;
          out.lba = e.lba;
          out.nsid = e.nsid;
        }
        page_bytes = 64 * sizeof(spec::ErrorLogEntry);
        unmask = spec::AsyncEventType::ERROR;
        break;
      }
      case Lid::SMART_HEALTH: {
        auto* log = reinterpret_cast<spec::SmartHealthLog*>(c_.page_);
        const ControllerStats& s = c_.stats_;
        log->composite_temperature = kCompositeTemperatureKelvin;
        log->available_spare = 100;
        log->available_spare_threshold = 10;
        auto units = [](uint64_t bytes) { return (bytes + spec::SMART_DATA_UNIT_BYTES - 1) / spec::SMART_DATA_UNIT_BYTES; };
        Put128(log->data_units_read, units(s.read_bytes));
        Put128(log->data_units_written, units(s.written_bytes));
        Put128(log->host_read_commands, s.read_commands);
        Put128(log->host_write_commands, s.write_commands);
        Put128(log->controller_busy_time, s.busy_ns / 60'000'000'000ull);
        Put128(log->power_cycles, 1);
        auto up = std::chrono::steady_clock::now() - c_.created_;
        Put128(log->power_on_hours, static_cast<uint64_t>(std::chrono::duration_cast<std::chrono::hours>(up).count()));
        Put128(log->media_errors, s.media_errors);
        Put128(log->num_error_log_entries, c_.error_count_);
        log->temp_sensor[0] = kCompositeTemperatureKelvin;
        page_bytes = sizeof(spec::SmartHealthLog);
        unmask = spec::AsyncEventType::SMART_HEALTH;
        break;
      }
      case Lid::FIRMWARE_SLOT:
        c_.page_[0] = 1;  // active slot 1
        PutAscii(reinterpret_cast<char*>(c_.page_ + 8), 8, kFirmwareRevision);
        page_bytes = 512;
        break;
      case Lid::CHANGED_NS_LIST: {
        auto* list = reinterpret_cast<spec::NamespaceList*>(c_.page_);
        if (c_.changed_namespaces_.size() > 1024) {
          list->ids[0] = 0xffffffff;  // more than 1024 changed
        } else {
          std::sort(c_.changed_namespaces_.begin(), c_.changed_namespaces_.end());
          std::copy(c_.changed_namespaces_.begin(), c_.changed_namespaces_.end(), list->ids);
        }
        if (!retain) c_.changed_namespaces_.clear();
        page_bytes = sizeof(spec::NamespaceList);
        unmask = spec::AsyncEventType::NOTICE;
        break;
      }
      case Lid::COMMANDS_EFFECTS: {
        auto* effects = reinterpret_cast<uint32_t*>(c_.page_);
        using Effect = spec::CommandEffect;
        constexpr uint32_t kSupported = spec::raw(Effect::CSUPP), kLbaContentChange = spec::raw(Effect::LBCC),
                           kNamespaceChange = spec::raw(Effect::NCC), kInventoryChange = spec::raw(Effect::NIC);
        using Op = spec::AdminOpcode;
        for (Op op : {Op::DELETE_IO_SQ, Op::CREATE_IO_SQ, Op::GET_LOG_PAGE, Op::DELETE_IO_CQ, Op::CREATE_IO_CQ,
                      Op::IDENTIFY, Op::ABORT, Op::SET_FEATURES, Op::GET_FEATURES, Op::ASYNC_EVENT_REQUEST})
          effects[spec::raw(op)] = kSupported;
        if (c_.primary()) {
          effects[spec::raw(Op::NAMESPACE_MANAGEMENT)] = kSupported | kNamespaceChange | kInventoryChange;
          effects[spec::raw(Op::NAMESPACE_ATTACHMENT)] = kSupported | kNamespaceChange | kInventoryChange;
          effects[spec::raw(Op::VIRTUALIZATION_MANAGEMENT)] = kSupported;
          effects[spec::raw(VendorOpcode::RESIZE_NAMESPACE)] = kSupported | kNamespaceChange;
          effects[spec::raw(VendorOpcode::SET_CONTROLLER_LIMITS)] = kSupported;
          effects[spec::raw(VendorOpcode::GET_CONTROLLER_LIMITS)] = kSupported;
          effects[spec::raw(VendorOpcode::SET_CONTROLLER_ACCESS)] = kSupported;
        }
        uint32_t* io = effects + 256;
        using Nvm = spec::NvmOpcode;
        io[spec::raw(Nvm::FLUSH)] = kSupported;
        io[spec::raw(Nvm::READ)] = kSupported;
        io[spec::raw(Nvm::COMPARE)] = kSupported;
        io[spec::raw(Nvm::WRITE)] = kSupported | kLbaContentChange;
        io[spec::raw(Nvm::WRITE_ZEROES)] = kSupported | kLbaContentChange;
        io[spec::raw(Nvm::DATASET_MANAGEMENT)] = kSupported | kLbaContentChange;
        page_bytes = 4096;
        break;
      }
      default:
        return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_LOG_PAGE), true, kSqeCdw10Offset);
    }
    if (offset >= page_bytes) return Fail(status::kInvalidField, true, kSqeCdw12Offset);
    // Reading a log page (without Retain Asynchronous Event) re-arms its event type.
    if (!retain && unmask != spec::AsyncEventType::VENDOR_SPECIFIC)
      c_.masked_event_types_ &= ~(1u << spec::raw(unmask));
    // The page is returned from `offset`; bytes past its end read as zero.
    uint64_t available = std::min(length, page_bytes - offset);
    memmove(c_.page_, c_.page_ + offset, available);
    memset(c_.page_ + available, 0, sizeof c_.page_ - available);
    if (length > sizeof c_.page_) {
      Status status = c_.MapData(sqe_, length, true, &c_.transfer_);
      if (status != status::kSuccess) return Fail(status, true, kSqeDptrOffset);
      std::vector<uint8_t> zero(length, 0);
      memcpy(zero.data(), c_.page_, sizeof c_.page_);
      CopyToTransfer(c_.transfer_, zero.data(), length);
      return Ok();
    }
    return ToHost(length);
  }

  Completion AsyncEventRequest() {
    if (c_.aer_cids_.size() >= kAsyncEventLimit)
      return Fail(StoreStatus(spec::CommandSpecificStatus::ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED), false);
    c_.aer_cids_.push_back(sqe_.cid);
    Completion completion;
    completion.deferred = true;  // completed when an event happens
    return completion;
  }

  Completion Abort() {
    uint16_t sqid = static_cast<uint16_t>(spec::abort_cmd::CDW10_SQID.get(sqe_.cdw10));
    uint16_t cid = static_cast<uint16_t>(spec::abort_cmd::CDW10_CID.get(sqe_.cdw10));
    if (sqid > kMaxQueueId || !c_.sqs_[sqid].exists) return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    // An outstanding Asynchronous Event Request is the only command that can
    // be in flight (all others run to completion when fetched).
    // Completing the AER takes a CQ slot besides the Abort's own: only
    // abort it when both fit, or the admin CQ would overrun.
    if (sqid == 0 && c_.CompletionSpace(0) >= 2) {
      auto it = std::find(c_.aer_cids_.begin(), c_.aer_cids_.end(), cid);
      if (it != c_.aer_cids_.end()) {
        c_.aer_cids_.erase(it);
        Completion aborted = Fail(StoreStatus(spec::GenericStatus::ABORTED_BY_REQUEST), false);
        c_.PostCompletion(0, cid, aborted, 0);
        return Ok(0);  // DW0 bit 0 clear: the command was aborted
      }
    }
    return Ok(1);  // not found: already completed
  }

  // --- SR-IOV management (PF) ---------------------------------------------

  std::vector<uint16_t> AttachedTo(uint32_t nsid) {
    NamespaceInfo info;
    if (!subsystem_.store().GetNamespace(nsid, &info)) return {};
    return info.attached_controllers;
  }

  Completion NamespaceManagement() {
    std::lock_guard<std::mutex> lock(subsystem_.management_mutex());
    auto select = static_cast<spec::NsManagementSel>(spec::ns_mgmt::CDW10_SEL.get(sqe_.cdw10));
    if (select == spec::NsManagementSel::CREATE) {
      Status status = FromHost(sizeof(spec::IdentifyNamespace));
      if (status != status::kSuccess) return Fail(status, true, kSqeDptrOffset);
      const auto* request = reinterpret_cast<const spec::IdentifyNamespace*>(c_.page_);
      if (request->nsze == 0 || request->ncap > request->nsze) return Fail(status::kInvalidField, true, kSqeDptrOffset);
      uint8_t format = spec::idns::FLBAS_FORMAT.get(request->flbas);
      if (format > 1 || spec::idns::FLBAS_EXTENDED.get(request->flbas))
        return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_FORMAT), true, kSqeDptrOffset);
      uint32_t nsid = 0;
      status = subsystem_.store().CreateNamespace(request->nsze, format == 1 ? 4096 : 512, &nsid);
      if (status != status::kSuccess) return Fail(status, true);
      subsystem_.NamespacesChanged();
      return Ok(nsid);
    }
    if (select == spec::NsManagementSel::DELETE) {
      std::vector<uint32_t> targets;
      if (sqe_.nsid == spec::NSID_BROADCAST) {
        for (const NamespaceInfo& info : subsystem_.store().Namespaces()) targets.push_back(info.nsid);
      } else {
        targets.push_back(sqe_.nsid);
      }
      for (uint32_t nsid : targets) {
        // Deleting an attached namespace detaches it first (the spec allows
        // it; the control plane refuses unless forced).
        for (uint16_t cntlid : AttachedTo(nsid)) subsystem_.store().Detach(nsid, cntlid);
        Status status = subsystem_.store().DeleteNamespace(nsid);
        if (status != status::kSuccess) {
          subsystem_.NamespacesChanged();
          return Fail(status, true, kSqeNsidOffset);
        }
      }
      subsystem_.NamespacesChanged();
      return Ok();
    }
    return Fail(status::kInvalidField, true, kSqeCdw10Offset);
  }

  Completion NamespaceAttachment() {
    std::lock_guard<std::mutex> lock(subsystem_.management_mutex());
    auto select = static_cast<spec::NsAttachmentSel>(spec::ns_attach::CDW10_SEL.get(sqe_.cdw10));
    if (select != spec::NsAttachmentSel::ATTACH && select != spec::NsAttachmentSel::DETACH)
      return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    NamespaceInfo info;
    if (!ValidNsid(sqe_.nsid) || !subsystem_.store().GetNamespace(sqe_.nsid, &info))
      return Fail(status::kInvalidNamespace, true, kSqeNsidOffset);
    Status status = FromHost(sizeof(spec::ControllerList));
    if (status != status::kSuccess) return Fail(status, true, kSqeDptrOffset);
    const auto* list = reinterpret_cast<const spec::ControllerList*>(c_.page_);
    if (list->count == 0 || list->count > 2047)
      return Fail(StoreStatus(spec::CommandSpecificStatus::CONTROLLER_LIST_INVALID), true, kSqeDptrOffset);
    for (uint16_t i = 0; i < list->count; i++) {
      if (list->ids[i] >= subsystem_.controller_count())
        return Fail(StoreStatus(spec::CommandSpecificStatus::CONTROLLER_LIST_INVALID), true, kSqeDptrOffset);
    }
    bool attach = select == spec::NsAttachmentSel::ATTACH;
    // Namespaces are private (NMIC = 0): one controller at a time. A VSA
    // belongs to exactly one VSIC.
    if (attach) {
      std::vector<uint16_t> after = info.attached_controllers;
      for (uint16_t i = 0; i < list->count; i++)
        if (std::find(after.begin(), after.end(), list->ids[i]) == after.end()) after.push_back(list->ids[i]);
      if (after.size() > 1 && (list->count > 1 || !info.attached_controllers.empty()) &&
          !(list->count == 1 && info.attached_controllers.size() == 1 && info.attached_controllers[0] == list->ids[0]))
        return Fail(StoreStatus(spec::CommandSpecificStatus::NAMESPACE_IS_PRIVATE), true, kSqeDptrOffset);
    }
    for (uint16_t i = 0; i < list->count; i++) {
      status = attach ? subsystem_.store().Attach(sqe_.nsid, list->ids[i]) : subsystem_.store().Detach(sqe_.nsid, list->ids[i]);
      if (status != status::kSuccess) {
        subsystem_.NamespacesChanged();
        return Fail(status, true, kSqeDptrOffset);
      }
    }
    subsystem_.NamespacesChanged();
    return Ok();
  }

  Completion VirtualizationManagement() {
    std::lock_guard<std::mutex> lock(subsystem_.management_mutex());
    auto action = static_cast<spec::VirtMgmtAction>(spec::virt_mgmt::CDW10_ACT.get(sqe_.cdw10));
    auto type = static_cast<spec::VirtResourceType>(spec::virt_mgmt::CDW10_RT.get(sqe_.cdw10));
    uint16_t cntlid = static_cast<uint16_t>(spec::virt_mgmt::CDW10_CNTLID.get(sqe_.cdw10));
    uint32_t count = spec::virt_mgmt::CDW11_NR.get(sqe_.cdw11);
    if (action == spec::VirtMgmtAction::PRIMARY_FLEXIBLE_ALLOCATION)
      return Fail(status::kInvalidField, true, kSqeCdw10Offset);  // the PF's resources are all private
    if (cntlid == 0 || cntlid >= subsystem_.controller_count())
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_CONTROLLER_IDENTIFIER), true, kSqeCdw10Offset + 2);
    Controller* secondary = subsystem_.controller(cntlid);
    switch (action) {
      case spec::VirtMgmtAction::SECONDARY_ASSIGN: {
        if (secondary->online())
          return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_SECONDARY_CONTROLLER_STATE), true, kSqeCdw10Offset + 2);
        bool vq = type == spec::VirtResourceType::VQ;
        if (!vq && type != spec::VirtResourceType::VI)
          return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_RESOURCE_IDENTIFIER), true, kSqeCdw10Offset + 1);
        uint32_t in_use = (vq ? subsystem_.assigned_vq() : subsystem_.assigned_vi()) -
                          (vq ? secondary->assigned_vq() : secondary->assigned_vi());
        uint32_t pool = vq ? subsystem_.flexible_vq_total() : subsystem_.flexible_vi_total();
        uint32_t per_secondary = vq ? subsystem_.config().max_vq_per_secondary : subsystem_.config().max_vi_per_secondary;
        if (count > per_secondary || in_use + count > pool)
          return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_NUMBER_OF_CONTROLLER_RESOURCES), true, kSqeCdw11Offset);
        if (vq) secondary->SetAssigned(static_cast<uint16_t>(count), secondary->assigned_vi());
        else secondary->SetAssigned(secondary->assigned_vq(), static_cast<uint16_t>(count));
        return Ok(count);
      }
      case spec::VirtMgmtAction::SECONDARY_ONLINE:
        // An admin queue and one I/O queue pair (2 VQ) and one interrupt.
        if (secondary->assigned_vq() < 2 || secondary->assigned_vi() < 1)
          return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_SECONDARY_CONTROLLER_STATE), true, kSqeCdw10Offset + 2);
        secondary->SetOnline(true);
        return Ok();
      case spec::VirtMgmtAction::SECONDARY_OFFLINE:
        secondary->SetOnline(false);
        secondary->SetAssigned(0, 0);  // offline releases the flexible resources
        return Ok();
      default:
        return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    }
  }

  // --- Vendor commands (PF) -----------------------------------------------

  Completion ResizeNamespace() {
    std::lock_guard<std::mutex> lock(subsystem_.management_mutex());
    uint64_t blocks = sqe_.cdw10 | (uint64_t{sqe_.cdw11} << 32);
    if (!ValidNsid(sqe_.nsid)) return Fail(status::kInvalidNamespace, true, kSqeNsidOffset);
    if (blocks == 0) return Fail(status::kInvalidField, true, kSqeCdw10Offset);
    Status status = subsystem_.store().ResizeNamespace(sqe_.nsid, blocks);
    if (status != status::kSuccess) return Fail(status, true, kSqeCdw10Offset);
    subsystem_.NamespacesChanged();
    return Ok();
  }

  Completion SetControllerLimits() {
    std::lock_guard<std::mutex> lock(subsystem_.management_mutex());
    uint16_t cntlid = static_cast<uint16_t>(sqe_.cdw10 & 0xffff);
    if (cntlid >= subsystem_.controller_count())
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_CONTROLLER_IDENTIFIER), true, kSqeCdw10Offset);
    Status status = subsystem_.store().SetLimits(ControllerLimits{cntlid, sqe_.cdw11, uint64_t{sqe_.cdw12} * 1024});
    if (status != status::kSuccess) return Fail(status, true);
    subsystem_.NamespacesChanged();
    return Ok();
  }

  Completion GetControllerLimits() {
    uint16_t cntlid = static_cast<uint16_t>(sqe_.cdw10 & 0xffff);
    if (cntlid >= subsystem_.controller_count())
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_CONTROLLER_IDENTIFIER), true, kSqeCdw10Offset);
    for (const ControllerLimits& limits : subsystem_.store().Limits())
      if (limits.cntlid == cntlid) return Ok(static_cast<uint32_t>(limits.iops), static_cast<uint32_t>(limits.bytes_per_second / 1024));
    return Ok(0, 0);
  }

  Completion SetControllerAccess() {
    uint16_t cntlid = static_cast<uint16_t>(sqe_.cdw10 & 0xffff);
    if (cntlid == 0 || cntlid >= subsystem_.controller_count())
      return Fail(StoreStatus(spec::CommandSpecificStatus::INVALID_CONTROLLER_IDENTIFIER), true, kSqeCdw10Offset);
    subsystem_.controller(cntlid)->SetReadOnly(sqe_.cdw11 & 1);
    return Ok();
  }

  Controller& c_;
  const spec::Sqe& sqe_;
  Subsystem& subsystem_;
};

Completion AdminCommands::Run(Controller& controller, const Command& command) {
  return Handler(controller, command).Run();
}

}  // namespace offpath::emu
