// Exports the compiler's view of the NVMe layouts in offpath/nvme_spec.h so
// test/10.nvme.spec.test.ts can hold the TypeScript declarations to them:
//
//  specLayout              name -> number for every size, offset, bit field
//                          and code the TypeScript modules declare. Names are
//                          the TypeScript ones, dotted: SQE_CDW10_OFFSET is
//                          "sqe.cdw10", CC_MPS_SHIFT "cc.mps.shift",
//                          AdminOpcode.IDENTIFY "admin.opcode.identify".
//  specEncode(kind, f)     bytes built from the C++ structs for one of the
//                          shared test vectors (test/vectors/nvme.json).
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "errors.h"
#include "offpath/nvme_spec.h"
#include "registry.h"

namespace offpath {
namespace {

namespace nv = offpath::nvme;

// "AdminOpcode.DELETE_IO_SQ" -> "admin.opcode.delete.io.sq": lower case, with
// a dot for each underscore and before each inner capital of a PascalCase word.
std::string Dotted(const std::string& name) {
  std::string out;
  for (size_t i = 0; i < name.size(); i++) {
    char c = name[i];
    if (c == '_') {
      out += '.';
      continue;
    }
    bool upper = std::isupper(static_cast<unsigned char>(c)) != 0;
    if (upper && i > 0 && std::islower(static_cast<unsigned char>(name[i - 1])) != 0) out += '.';
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  return out;
}

// Flat constants drop the unit-ish suffix: SQE_SIZE_BYTES -> "sqe.size".
std::string ConstantKey(std::string name) {
  for (const char* suffix : {"_OFFSET", "_BYTES"}) {
    size_t n = std::strlen(suffix);
    if (name.size() > n && name.compare(name.size() - n, n, suffix) == 0) {
      name.resize(name.size() - n);
      break;
    }
  }
  return Dotted(name);
}

class Layout {
 public:
  explicit Layout(Napi::Env env) : env_(env), object_(Napi::Object::New(env)) {}

  void Add(const std::string& key, double value) {
    if (object_.Has(key)) ThrowRange(env_, "specLayout: duplicate key " + key);
    object_.Set(key, Napi::Number::New(env_, value));
  }
  template <typename T>
  void Field(const std::string& key, const nv::Field<T>& field) {
    Add(key + ".shift", field.shift);
    Add(key + ".mask", static_cast<double>(field.mask));
  }
  Napi::Object object() const { return object_; }

 private:
  Napi::Env env_;
  Napi::Object object_;
};

#define OFFPATH_OFF(prefix, type, member) layout.Add(std::string(prefix) + "." + Dotted(#member), offsetof(type, member))
#define OFFPATH_CONST(name) layout.Add(ConstantKey(#name), nv::name)
#define OFFPATH_FIELD(ns, name) layout.Field(Dotted(#ns "." #name), nv::ns::name)
#define OFFPATH_ENUM(type, name) layout.Add(Dotted(#type "." #name), nv::raw(nv::type::name))

Napi::Object BuildLayout(Napi::Env env) {
  Layout layout(env);
  using nv::ControllerRegisters;
  using nv::Cqe;
  using nv::DsmRange;
  using nv::ErrorLogEntry;
  using nv::IdentifyController;
  using nv::IdentifyNamespace;
  using nv::PowerStateDescriptor;
  using nv::PrimaryControllerCaps;
  using nv::SecondaryControllerEntry;
  using nv::SecondaryControllerList;
  using nv::SglDescriptor;
  using nv::SmartHealthLog;
  using nv::Sqe;

  // Controller registers.
  OFFPATH_OFF("reg", ControllerRegisters, cap);
  OFFPATH_OFF("reg", ControllerRegisters, vs);
  OFFPATH_OFF("reg", ControllerRegisters, intms);
  OFFPATH_OFF("reg", ControllerRegisters, intmc);
  OFFPATH_OFF("reg", ControllerRegisters, cc);
  OFFPATH_OFF("reg", ControllerRegisters, csts);
  OFFPATH_OFF("reg", ControllerRegisters, nssr);
  OFFPATH_OFF("reg", ControllerRegisters, aqa);
  OFFPATH_OFF("reg", ControllerRegisters, asq);
  OFFPATH_OFF("reg", ControllerRegisters, acq);
  OFFPATH_OFF("reg", ControllerRegisters, cmbloc);
  OFFPATH_OFF("reg", ControllerRegisters, cmbsz);
  layout.Add("doorbell.base", sizeof(ControllerRegisters));
  OFFPATH_CONST(DOORBELL_STRIDE_BASE_BYTES);
  OFFPATH_CONST(NSSR_RESET_VALUE);

  OFFPATH_FIELD(cap, MQES);
  OFFPATH_FIELD(cap, CQR);
  OFFPATH_FIELD(cap, AMS);
  OFFPATH_FIELD(cap, TO);
  OFFPATH_FIELD(cap, DSTRD);
  OFFPATH_FIELD(cap, NSSRS);
  OFFPATH_FIELD(cap, CSS);
  OFFPATH_FIELD(cap, BPS);
  OFFPATH_FIELD(cap, MPSMIN);
  OFFPATH_FIELD(cap, MPSMAX);
  OFFPATH_FIELD(cap, PMRS);
  OFFPATH_FIELD(cap, CMBS);
  OFFPATH_CONST(CAP_TO_UNIT_MS);
  OFFPATH_ENUM(CapCss, NVM);
  OFFPATH_ENUM(CapCss, IO_COMMAND_SETS);
  OFFPATH_ENUM(CapCss, ADMIN_ONLY);
  OFFPATH_ENUM(CapAms, WEIGHTED_ROUND_ROBIN_URGENT);
  OFFPATH_ENUM(CapAms, VENDOR_SPECIFIC);

  OFFPATH_FIELD(cc, EN);
  OFFPATH_FIELD(cc, CSS);
  OFFPATH_FIELD(cc, MPS);
  OFFPATH_FIELD(cc, AMS);
  OFFPATH_FIELD(cc, SHN);
  OFFPATH_FIELD(cc, IOSQES);
  OFFPATH_FIELD(cc, IOCQES);
  OFFPATH_ENUM(CcCss, NVM);
  OFFPATH_ENUM(CcCss, ALL_SUPPORTED);
  OFFPATH_ENUM(CcCss, ADMIN_ONLY);
  OFFPATH_ENUM(CcAms, ROUND_ROBIN);
  OFFPATH_ENUM(CcAms, WEIGHTED_ROUND_ROBIN_URGENT);
  OFFPATH_ENUM(CcAms, VENDOR_SPECIFIC);
  OFFPATH_ENUM(ShutdownNotification, NONE);
  OFFPATH_ENUM(ShutdownNotification, NORMAL);
  OFFPATH_ENUM(ShutdownNotification, ABRUPT);

  OFFPATH_FIELD(csts, RDY);
  OFFPATH_FIELD(csts, CFS);
  OFFPATH_FIELD(csts, SHST);
  OFFPATH_FIELD(csts, NSSRO);
  OFFPATH_FIELD(csts, PP);
  OFFPATH_ENUM(ShutdownStatus, NORMAL);
  OFFPATH_ENUM(ShutdownStatus, OCCURRING);
  OFFPATH_ENUM(ShutdownStatus, COMPLETE);

  OFFPATH_FIELD(aqa, ASQS);
  OFFPATH_FIELD(aqa, ACQS);
  OFFPATH_FIELD(vs, MAJOR);
  OFFPATH_FIELD(vs, MINOR);
  OFFPATH_FIELD(vs, TERTIARY);
  OFFPATH_FIELD(cmbloc, BIR);
  OFFPATH_FIELD(cmbloc, OFST);
  OFFPATH_FIELD(cmbsz, SQS);
  OFFPATH_FIELD(cmbsz, CQS);
  OFFPATH_FIELD(cmbsz, LISTS);
  OFFPATH_FIELD(cmbsz, RDS);
  OFFPATH_FIELD(cmbsz, WDS);
  OFFPATH_FIELD(cmbsz, SZU);
  OFFPATH_FIELD(cmbsz, SZ);

  // Queue entries.
  OFFPATH_CONST(ADMIN_QUEUE_MAX_ENTRIES);
  OFFPATH_CONST(IO_QUEUE_MAX_ENTRIES);
  OFFPATH_CONST(QUEUE_MIN_ENTRIES);
  layout.Add("sqe.size", sizeof(Sqe));
  OFFPATH_CONST(SQE_SIZE_LOG2);
  OFFPATH_OFF("sqe", Sqe, opc);
  OFFPATH_OFF("sqe", Sqe, flags);
  OFFPATH_OFF("sqe", Sqe, cid);
  OFFPATH_OFF("sqe", Sqe, nsid);
  OFFPATH_OFF("sqe", Sqe, cdw2);
  OFFPATH_OFF("sqe", Sqe, cdw3);
  OFFPATH_OFF("sqe", Sqe, mptr);
  layout.Add("sqe.prp1", offsetof(Sqe, dptr.prp.prp1));
  layout.Add("sqe.prp2", offsetof(Sqe, dptr.prp.prp2));
  layout.Add("sqe.sgl1", offsetof(Sqe, dptr.sgl1));
  OFFPATH_OFF("sqe", Sqe, cdw10);
  OFFPATH_OFF("sqe", Sqe, cdw11);
  OFFPATH_OFF("sqe", Sqe, cdw12);
  OFFPATH_OFF("sqe", Sqe, cdw13);
  OFFPATH_OFF("sqe", Sqe, cdw14);
  OFFPATH_OFF("sqe", Sqe, cdw15);
  OFFPATH_FIELD(sqe, FUSE);
  OFFPATH_FIELD(sqe, PSDT);
  OFFPATH_ENUM(Fuse, NORMAL);
  OFFPATH_ENUM(Fuse, FIRST);
  OFFPATH_ENUM(Fuse, SECOND);
  OFFPATH_ENUM(Psdt, PRP);
  OFFPATH_ENUM(Psdt, SGL_MPTR_CONTIGUOUS);
  OFFPATH_ENUM(Psdt, SGL_MPTR_SGL);

  layout.Add("cqe.size", sizeof(Cqe));
  OFFPATH_CONST(CQE_SIZE_LOG2);
  OFFPATH_OFF("cqe", Cqe, dw0);
  OFFPATH_OFF("cqe", Cqe, dw1);
  OFFPATH_OFF("cqe", Cqe, sqhd);
  OFFPATH_OFF("cqe", Cqe, sqid);
  OFFPATH_OFF("cqe", Cqe, cid);
  OFFPATH_OFF("cqe", Cqe, status);

  // Opcodes.
  OFFPATH_ENUM(AdminOpcode, DELETE_IO_SQ);
  OFFPATH_ENUM(AdminOpcode, CREATE_IO_SQ);
  OFFPATH_ENUM(AdminOpcode, GET_LOG_PAGE);
  OFFPATH_ENUM(AdminOpcode, DELETE_IO_CQ);
  OFFPATH_ENUM(AdminOpcode, CREATE_IO_CQ);
  OFFPATH_ENUM(AdminOpcode, IDENTIFY);
  OFFPATH_ENUM(AdminOpcode, ABORT);
  OFFPATH_ENUM(AdminOpcode, SET_FEATURES);
  OFFPATH_ENUM(AdminOpcode, GET_FEATURES);
  OFFPATH_ENUM(AdminOpcode, ASYNC_EVENT_REQUEST);
  OFFPATH_ENUM(AdminOpcode, NAMESPACE_MANAGEMENT);
  OFFPATH_ENUM(AdminOpcode, FIRMWARE_COMMIT);
  OFFPATH_ENUM(AdminOpcode, FIRMWARE_IMAGE_DOWNLOAD);
  OFFPATH_ENUM(AdminOpcode, DEVICE_SELF_TEST);
  OFFPATH_ENUM(AdminOpcode, NAMESPACE_ATTACHMENT);
  OFFPATH_ENUM(AdminOpcode, KEEP_ALIVE);
  OFFPATH_ENUM(AdminOpcode, DIRECTIVE_SEND);
  OFFPATH_ENUM(AdminOpcode, DIRECTIVE_RECEIVE);
  OFFPATH_ENUM(AdminOpcode, VIRTUALIZATION_MANAGEMENT);
  OFFPATH_ENUM(AdminOpcode, DOORBELL_BUFFER_CONFIG);
  OFFPATH_ENUM(AdminOpcode, FORMAT_NVM);
  OFFPATH_ENUM(AdminOpcode, SECURITY_SEND);
  OFFPATH_ENUM(AdminOpcode, SECURITY_RECEIVE);
  OFFPATH_ENUM(AdminOpcode, SANITIZE);
  OFFPATH_CONST(ADMIN_VENDOR_OPCODE_MIN);
  OFFPATH_ENUM(NvmOpcode, FLUSH);
  OFFPATH_ENUM(NvmOpcode, WRITE);
  OFFPATH_ENUM(NvmOpcode, READ);
  OFFPATH_ENUM(NvmOpcode, WRITE_UNCORRECTABLE);
  OFFPATH_ENUM(NvmOpcode, COMPARE);
  OFFPATH_ENUM(NvmOpcode, WRITE_ZEROES);
  OFFPATH_ENUM(NvmOpcode, DATASET_MANAGEMENT);
  OFFPATH_ENUM(NvmOpcode, VERIFY);
  OFFPATH_ENUM(NvmOpcode, RESERVATION_REGISTER);
  OFFPATH_ENUM(NvmOpcode, RESERVATION_REPORT);
  OFFPATH_ENUM(NvmOpcode, RESERVATION_ACQUIRE);
  OFFPATH_ENUM(NvmOpcode, RESERVATION_RELEASE);
  OFFPATH_CONST(NVM_VENDOR_OPCODE_MIN);
  OFFPATH_FIELD(opc, DATA_TRANSFER);
  OFFPATH_ENUM(DataTransfer, NONE);
  OFFPATH_ENUM(DataTransfer, HOST_TO_CONTROLLER);
  OFFPATH_ENUM(DataTransfer, CONTROLLER_TO_HOST);
  OFFPATH_ENUM(DataTransfer, BIDIRECTIONAL);

  // PRP and SGL.
  OFFPATH_CONST(PRP_ENTRY_SIZE_BYTES);
  OFFPATH_CONST(PRP1_ALIGNMENT_BYTES);
  OFFPATH_CONST(MEMORY_PAGE_SIZE_MIN_BYTES);
  layout.Add("sgl.descriptor.size", sizeof(SglDescriptor));
  OFFPATH_OFF("sgl", SglDescriptor, address);
  OFFPATH_OFF("sgl", SglDescriptor, length);
  OFFPATH_OFF("sgl", SglDescriptor, identifier);
  OFFPATH_FIELD(sgl, TYPE);
  OFFPATH_FIELD(sgl, SUBTYPE);
  OFFPATH_ENUM(SglType, DATA_BLOCK);
  OFFPATH_ENUM(SglType, BIT_BUCKET);
  OFFPATH_ENUM(SglType, SEGMENT);
  OFFPATH_ENUM(SglType, LAST_SEGMENT);
  OFFPATH_ENUM(SglType, KEYED_DATA_BLOCK);
  OFFPATH_ENUM(SglType, TRANSPORT_DATA_BLOCK);
  OFFPATH_ENUM(SglSubtype, ADDRESS);
  OFFPATH_ENUM(SglSubtype, OFFSET);

  // I/O commands.
  OFFPATH_FIELD(rw, CDW12_NLB);
  OFFPATH_FIELD(rw, CDW12_DEAC);
  OFFPATH_FIELD(rw, CDW12_PRINFO);
  OFFPATH_FIELD(rw, CDW12_FUA);
  OFFPATH_FIELD(rw, CDW12_LR);
  OFFPATH_FIELD(dsm, CDW10_NR);
  OFFPATH_FIELD(dsm, CDW11_IDR);
  OFFPATH_FIELD(dsm, CDW11_IDW);
  OFFPATH_FIELD(dsm, CDW11_AD);
  OFFPATH_CONST(DSM_MAX_RANGES);
  layout.Add("dsm.range.size", sizeof(DsmRange));
  OFFPATH_OFF("dsm.range", DsmRange, attributes);
  OFFPATH_OFF("dsm.range", DsmRange, nlb);
  OFFPATH_OFF("dsm.range", DsmRange, slba);

  // Queue management.
  OFFPATH_FIELD(create_io_sq, CDW10_QID);
  OFFPATH_FIELD(create_io_sq, CDW10_QSIZE);
  OFFPATH_FIELD(create_io_sq, CDW11_PC);
  OFFPATH_FIELD(create_io_sq, CDW11_QPRIO);
  OFFPATH_FIELD(create_io_sq, CDW11_CQID);
  OFFPATH_ENUM(QueuePriority, URGENT);
  OFFPATH_ENUM(QueuePriority, HIGH);
  OFFPATH_ENUM(QueuePriority, MEDIUM);
  OFFPATH_ENUM(QueuePriority, LOW);
  OFFPATH_FIELD(create_io_cq, CDW10_QID);
  OFFPATH_FIELD(create_io_cq, CDW10_QSIZE);
  OFFPATH_FIELD(create_io_cq, CDW11_PC);
  OFFPATH_FIELD(create_io_cq, CDW11_IEN);
  OFFPATH_FIELD(create_io_cq, CDW11_IV);
  OFFPATH_FIELD(delete_io_queue, CDW10_QID);
  layout.Field("abort.cdw10.sqid", nv::abort_cmd::CDW10_SQID);
  layout.Field("abort.cdw10.cid", nv::abort_cmd::CDW10_CID);

  // Status.
  OFFPATH_FIELD(status, PHASE);
  OFFPATH_FIELD(status, SC);
  OFFPATH_FIELD(status, SCT);
  OFFPATH_FIELD(status, CRD);
  OFFPATH_FIELD(status, MORE);
  OFFPATH_FIELD(status, DNR);
  OFFPATH_ENUM(StatusCodeType, GENERIC);
  OFFPATH_ENUM(StatusCodeType, COMMAND_SPECIFIC);
  OFFPATH_ENUM(StatusCodeType, MEDIA_DATA_INTEGRITY);
  OFFPATH_ENUM(StatusCodeType, PATH);
  OFFPATH_ENUM(StatusCodeType, VENDOR_SPECIFIC);
  OFFPATH_ENUM(GenericStatus, SUCCESS);
  OFFPATH_ENUM(GenericStatus, INVALID_OPCODE);
  OFFPATH_ENUM(GenericStatus, INVALID_FIELD);
  OFFPATH_ENUM(GenericStatus, CID_CONFLICT);
  OFFPATH_ENUM(GenericStatus, DATA_TRANSFER_ERROR);
  OFFPATH_ENUM(GenericStatus, ABORTED_POWER_LOSS);
  OFFPATH_ENUM(GenericStatus, INTERNAL_ERROR);
  OFFPATH_ENUM(GenericStatus, ABORTED_BY_REQUEST);
  OFFPATH_ENUM(GenericStatus, ABORTED_SQ_DELETION);
  OFFPATH_ENUM(GenericStatus, ABORTED_FAILED_FUSED);
  OFFPATH_ENUM(GenericStatus, ABORTED_MISSING_FUSED);
  OFFPATH_ENUM(GenericStatus, INVALID_NAMESPACE_OR_FORMAT);
  OFFPATH_ENUM(GenericStatus, COMMAND_SEQUENCE_ERROR);
  OFFPATH_ENUM(GenericStatus, INVALID_SGL_SEGMENT_DESCRIPTOR);
  OFFPATH_ENUM(GenericStatus, INVALID_NUMBER_OF_SGL_DESCRIPTORS);
  OFFPATH_ENUM(GenericStatus, DATA_SGL_LENGTH_INVALID);
  OFFPATH_ENUM(GenericStatus, METADATA_SGL_LENGTH_INVALID);
  OFFPATH_ENUM(GenericStatus, SGL_DESCRIPTOR_TYPE_INVALID);
  OFFPATH_ENUM(GenericStatus, INVALID_USE_OF_CMB);
  OFFPATH_ENUM(GenericStatus, PRP_OFFSET_INVALID);
  OFFPATH_ENUM(GenericStatus, ATOMIC_WRITE_UNIT_EXCEEDED);
  OFFPATH_ENUM(GenericStatus, OPERATION_DENIED);
  OFFPATH_ENUM(GenericStatus, SGL_OFFSET_INVALID);
  OFFPATH_ENUM(GenericStatus, HOST_ID_INCONSISTENT_FORMAT);
  OFFPATH_ENUM(GenericStatus, KEEP_ALIVE_EXPIRED);
  OFFPATH_ENUM(GenericStatus, INVALID_KEEP_ALIVE_TIMEOUT);
  OFFPATH_ENUM(GenericStatus, ABORTED_PREEMPT);
  OFFPATH_ENUM(GenericStatus, SANITIZE_FAILED);
  OFFPATH_ENUM(GenericStatus, SANITIZE_IN_PROGRESS);
  OFFPATH_ENUM(GenericStatus, SGL_DATA_BLOCK_GRANULARITY_INVALID);
  OFFPATH_ENUM(GenericStatus, COMMAND_NOT_SUPPORTED_FOR_CMB_QUEUE);
  OFFPATH_ENUM(GenericStatus, NS_WRITE_PROTECTED);
  OFFPATH_ENUM(GenericStatus, COMMAND_INTERRUPTED);
  OFFPATH_ENUM(GenericStatus, TRANSIENT_TRANSPORT_ERROR);
  OFFPATH_ENUM(GenericStatus, LBA_OUT_OF_RANGE);
  OFFPATH_ENUM(GenericStatus, CAPACITY_EXCEEDED);
  OFFPATH_ENUM(GenericStatus, NAMESPACE_NOT_READY);
  OFFPATH_ENUM(GenericStatus, RESERVATION_CONFLICT);
  OFFPATH_ENUM(GenericStatus, FORMAT_IN_PROGRESS);
  OFFPATH_ENUM(CommandSpecificStatus, COMPLETION_QUEUE_INVALID);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_QUEUE_IDENTIFIER);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_QUEUE_SIZE);
  OFFPATH_ENUM(CommandSpecificStatus, ABORT_COMMAND_LIMIT_EXCEEDED);
  OFFPATH_ENUM(CommandSpecificStatus, ASYNC_EVENT_REQUEST_LIMIT_EXCEEDED);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_FIRMWARE_SLOT);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_FIRMWARE_IMAGE);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_INTERRUPT_VECTOR);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_LOG_PAGE);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_FORMAT);
  OFFPATH_ENUM(CommandSpecificStatus, FIRMWARE_REQUIRES_CONVENTIONAL_RESET);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_QUEUE_DELETION);
  OFFPATH_ENUM(CommandSpecificStatus, FEATURE_ID_NOT_SAVEABLE);
  OFFPATH_ENUM(CommandSpecificStatus, FEATURE_NOT_CHANGEABLE);
  OFFPATH_ENUM(CommandSpecificStatus, FEATURE_NOT_NAMESPACE_SPECIFIC);
  OFFPATH_ENUM(CommandSpecificStatus, FIRMWARE_REQUIRES_SUBSYSTEM_RESET);
  OFFPATH_ENUM(CommandSpecificStatus, FIRMWARE_REQUIRES_RESET);
  OFFPATH_ENUM(CommandSpecificStatus, FIRMWARE_REQUIRES_MAX_TIME_VIOLATION);
  OFFPATH_ENUM(CommandSpecificStatus, FIRMWARE_ACTIVATION_PROHIBITED);
  OFFPATH_ENUM(CommandSpecificStatus, OVERLAPPING_RANGE);
  OFFPATH_ENUM(CommandSpecificStatus, NAMESPACE_INSUFFICIENT_CAPACITY);
  OFFPATH_ENUM(CommandSpecificStatus, NAMESPACE_ID_UNAVAILABLE);
  OFFPATH_ENUM(CommandSpecificStatus, NAMESPACE_ALREADY_ATTACHED);
  OFFPATH_ENUM(CommandSpecificStatus, NAMESPACE_IS_PRIVATE);
  OFFPATH_ENUM(CommandSpecificStatus, NAMESPACE_NOT_ATTACHED);
  OFFPATH_ENUM(CommandSpecificStatus, THIN_PROVISIONING_NOT_SUPPORTED);
  OFFPATH_ENUM(CommandSpecificStatus, CONTROLLER_LIST_INVALID);
  OFFPATH_ENUM(CommandSpecificStatus, DEVICE_SELF_TEST_IN_PROGRESS);
  OFFPATH_ENUM(CommandSpecificStatus, BOOT_PARTITION_WRITE_PROHIBITED);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_CONTROLLER_IDENTIFIER);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_SECONDARY_CONTROLLER_STATE);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_NUMBER_OF_CONTROLLER_RESOURCES);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_RESOURCE_IDENTIFIER);
  OFFPATH_ENUM(CommandSpecificStatus, SANITIZE_PROHIBITED_WHILE_PMR_ENABLED);
  OFFPATH_ENUM(CommandSpecificStatus, ANA_GROUP_IDENTIFIER_INVALID);
  OFFPATH_ENUM(CommandSpecificStatus, ANA_ATTACH_FAILED);
  OFFPATH_ENUM(CommandSpecificStatus, CONFLICTING_ATTRIBUTES);
  OFFPATH_ENUM(CommandSpecificStatus, INVALID_PROTECTION_INFORMATION);
  OFFPATH_ENUM(CommandSpecificStatus, ATTEMPTED_WRITE_TO_READ_ONLY_RANGE);
  OFFPATH_ENUM(MediaStatus, WRITE_FAULT);
  OFFPATH_ENUM(MediaStatus, UNRECOVERED_READ_ERROR);
  OFFPATH_ENUM(MediaStatus, END_TO_END_GUARD);
  OFFPATH_ENUM(MediaStatus, END_TO_END_APPLICATION_TAG);
  OFFPATH_ENUM(MediaStatus, END_TO_END_REFERENCE_TAG);
  OFFPATH_ENUM(MediaStatus, COMPARE_FAILURE);
  OFFPATH_ENUM(MediaStatus, ACCESS_DENIED);
  OFFPATH_ENUM(MediaStatus, DEALLOCATED_OR_UNWRITTEN_BLOCK);
  OFFPATH_ENUM(PathStatus, INTERNAL_PATH_ERROR);
  OFFPATH_ENUM(PathStatus, ASYMMETRIC_ACCESS_PERSISTENT_LOSS);
  OFFPATH_ENUM(PathStatus, ASYMMETRIC_ACCESS_INACCESSIBLE);
  OFFPATH_ENUM(PathStatus, ASYMMETRIC_ACCESS_TRANSITION);
  OFFPATH_ENUM(PathStatus, CONTROLLER_PATHING_ERROR);
  OFFPATH_ENUM(PathStatus, HOST_PATHING_ERROR);
  OFFPATH_ENUM(PathStatus, COMMAND_ABORTED_BY_HOST);

  // Identify.
  OFFPATH_CONST(NSID_BROADCAST);
  OFFPATH_CONST(IDENTIFY_DATA_SIZE_BYTES);
  OFFPATH_FIELD(identify, CDW10_CNS);
  OFFPATH_FIELD(identify, CDW10_CNTID);
  OFFPATH_FIELD(identify, CDW11_CSI);
  OFFPATH_ENUM(Cns, NS);
  OFFPATH_ENUM(Cns, CTRL);
  OFFPATH_ENUM(Cns, ACTIVE_NS_LIST);
  OFFPATH_ENUM(Cns, NS_DESCRIPTOR_LIST);
  OFFPATH_ENUM(Cns, ALLOCATED_NS_LIST);
  OFFPATH_ENUM(Cns, ALLOCATED_NS);
  OFFPATH_ENUM(Cns, NS_ATTACHED_CTRL_LIST);
  OFFPATH_ENUM(Cns, CTRL_LIST);
  OFFPATH_ENUM(Cns, PRIMARY_CTRL_CAPS);
  OFFPATH_ENUM(Cns, SECONDARY_CTRL_LIST);

  layout.Add("idctrl.size", sizeof(IdentifyController));
  OFFPATH_OFF("idctrl", IdentifyController, vid);
  OFFPATH_OFF("idctrl", IdentifyController, ssvid);
  OFFPATH_OFF("idctrl", IdentifyController, sn);
  layout.Add("idctrl.sn.size", sizeof(IdentifyController::sn));
  OFFPATH_OFF("idctrl", IdentifyController, mn);
  layout.Add("idctrl.mn.size", sizeof(IdentifyController::mn));
  OFFPATH_OFF("idctrl", IdentifyController, fr);
  layout.Add("idctrl.fr.size", sizeof(IdentifyController::fr));
  OFFPATH_OFF("idctrl", IdentifyController, rab);
  OFFPATH_OFF("idctrl", IdentifyController, ieee);
  layout.Add("idctrl.ieee.size", sizeof(IdentifyController::ieee));
  OFFPATH_OFF("idctrl", IdentifyController, cmic);
  OFFPATH_OFF("idctrl", IdentifyController, mdts);
  OFFPATH_OFF("idctrl", IdentifyController, cntlid);
  OFFPATH_OFF("idctrl", IdentifyController, ver);
  OFFPATH_OFF("idctrl", IdentifyController, rtd3r);
  OFFPATH_OFF("idctrl", IdentifyController, rtd3e);
  OFFPATH_OFF("idctrl", IdentifyController, oaes);
  OFFPATH_OFF("idctrl", IdentifyController, ctratt);
  OFFPATH_OFF("idctrl", IdentifyController, rrls);
  OFFPATH_OFF("idctrl", IdentifyController, cntrltype);
  OFFPATH_OFF("idctrl", IdentifyController, fguid);
  layout.Add("idctrl.fguid.size", sizeof(IdentifyController::fguid));
  OFFPATH_OFF("idctrl", IdentifyController, crdt1);
  OFFPATH_OFF("idctrl", IdentifyController, crdt2);
  OFFPATH_OFF("idctrl", IdentifyController, crdt3);
  OFFPATH_OFF("idctrl", IdentifyController, oacs);
  OFFPATH_OFF("idctrl", IdentifyController, acl);
  OFFPATH_OFF("idctrl", IdentifyController, aerl);
  OFFPATH_OFF("idctrl", IdentifyController, frmw);
  OFFPATH_OFF("idctrl", IdentifyController, lpa);
  OFFPATH_OFF("idctrl", IdentifyController, elpe);
  OFFPATH_OFF("idctrl", IdentifyController, npss);
  OFFPATH_OFF("idctrl", IdentifyController, avscc);
  OFFPATH_OFF("idctrl", IdentifyController, apsta);
  OFFPATH_OFF("idctrl", IdentifyController, wctemp);
  OFFPATH_OFF("idctrl", IdentifyController, cctemp);
  OFFPATH_OFF("idctrl", IdentifyController, mtfa);
  OFFPATH_OFF("idctrl", IdentifyController, hmpre);
  OFFPATH_OFF("idctrl", IdentifyController, hmmin);
  OFFPATH_OFF("idctrl", IdentifyController, tnvmcap);
  OFFPATH_OFF("idctrl", IdentifyController, unvmcap);
  layout.Add("idctrl.nvmcap.size", sizeof(IdentifyController::tnvmcap));
  OFFPATH_OFF("idctrl", IdentifyController, rpmbs);
  OFFPATH_OFF("idctrl", IdentifyController, edstt);
  OFFPATH_OFF("idctrl", IdentifyController, dsto);
  OFFPATH_OFF("idctrl", IdentifyController, fwug);
  OFFPATH_OFF("idctrl", IdentifyController, kas);
  OFFPATH_OFF("idctrl", IdentifyController, hctma);
  OFFPATH_OFF("idctrl", IdentifyController, mntmt);
  OFFPATH_OFF("idctrl", IdentifyController, mxtmt);
  OFFPATH_OFF("idctrl", IdentifyController, sanicap);
  OFFPATH_OFF("idctrl", IdentifyController, sqes);
  OFFPATH_OFF("idctrl", IdentifyController, cqes);
  OFFPATH_OFF("idctrl", IdentifyController, maxcmd);
  OFFPATH_OFF("idctrl", IdentifyController, nn);
  OFFPATH_OFF("idctrl", IdentifyController, oncs);
  OFFPATH_OFF("idctrl", IdentifyController, fuses);
  OFFPATH_OFF("idctrl", IdentifyController, fna);
  OFFPATH_OFF("idctrl", IdentifyController, vwc);
  OFFPATH_OFF("idctrl", IdentifyController, awun);
  OFFPATH_OFF("idctrl", IdentifyController, awupf);
  OFFPATH_OFF("idctrl", IdentifyController, nvscc);
  OFFPATH_OFF("idctrl", IdentifyController, nwpc);
  OFFPATH_OFF("idctrl", IdentifyController, acwu);
  OFFPATH_OFF("idctrl", IdentifyController, sgls);
  OFFPATH_OFF("idctrl", IdentifyController, mnan);
  OFFPATH_OFF("idctrl", IdentifyController, subnqn);
  layout.Add("idctrl.subnqn.size", sizeof(IdentifyController::subnqn));
  OFFPATH_OFF("idctrl", IdentifyController, psd);
  layout.Add("idctrl.psd.count", std::extent_v<decltype(IdentifyController::psd)>);
  OFFPATH_OFF("idctrl", IdentifyController, vs);
  layout.Add("idctrl.vs.size", sizeof(IdentifyController::vs));
  OFFPATH_FIELD(idctrl, QES_MIN);
  OFFPATH_FIELD(idctrl, QES_MAX);
  OFFPATH_FIELD(idctrl, VWC_PRESENT);
  OFFPATH_FIELD(idctrl, SGLS_SUPPORT);
  OFFPATH_ENUM(IdctrlCmic, MULTI_PORT);
  OFFPATH_ENUM(IdctrlCmic, MULTI_CONTROLLER);
  OFFPATH_ENUM(IdctrlCmic, SRIOV_VIRTUAL_FUNCTION);
  OFFPATH_ENUM(IdctrlCmic, ANA_REPORTING);
  OFFPATH_ENUM(IdctrlOacs, SECURITY);
  OFFPATH_ENUM(IdctrlOacs, FORMAT_NVM);
  OFFPATH_ENUM(IdctrlOacs, FIRMWARE);
  OFFPATH_ENUM(IdctrlOacs, NAMESPACE_MANAGEMENT);
  OFFPATH_ENUM(IdctrlOacs, DEVICE_SELF_TEST);
  OFFPATH_ENUM(IdctrlOacs, DIRECTIVES);
  OFFPATH_ENUM(IdctrlOacs, NVME_MI);
  OFFPATH_ENUM(IdctrlOacs, VIRTUALIZATION_MANAGEMENT);
  OFFPATH_ENUM(IdctrlOacs, DOORBELL_BUFFER_CONFIG);
  OFFPATH_ENUM(IdctrlOncs, COMPARE);
  OFFPATH_ENUM(IdctrlOncs, WRITE_UNCORRECTABLE);
  OFFPATH_ENUM(IdctrlOncs, DATASET_MANAGEMENT);
  OFFPATH_ENUM(IdctrlOncs, WRITE_ZEROES);
  OFFPATH_ENUM(IdctrlOncs, SAVE_SELECT);
  OFFPATH_ENUM(IdctrlOncs, RESERVATIONS);
  OFFPATH_ENUM(IdctrlOncs, TIMESTAMP);
  OFFPATH_ENUM(IdctrlOncs, VERIFY);
  OFFPATH_ENUM(ControllerType, IO);
  OFFPATH_ENUM(ControllerType, DISCOVERY);
  OFFPATH_ENUM(ControllerType, ADMIN);

  layout.Add("psd.size", sizeof(PowerStateDescriptor));
  OFFPATH_OFF("psd", PowerStateDescriptor, mp);
  OFFPATH_OFF("psd", PowerStateDescriptor, flags);
  OFFPATH_OFF("psd", PowerStateDescriptor, enlat);
  OFFPATH_OFF("psd", PowerStateDescriptor, exlat);
  OFFPATH_OFF("psd", PowerStateDescriptor, rrt);
  OFFPATH_OFF("psd", PowerStateDescriptor, rrl);
  OFFPATH_OFF("psd", PowerStateDescriptor, rwt);
  OFFPATH_OFF("psd", PowerStateDescriptor, rwl);

  layout.Add("idns.size", sizeof(IdentifyNamespace));
  OFFPATH_OFF("idns", IdentifyNamespace, nsze);
  OFFPATH_OFF("idns", IdentifyNamespace, ncap);
  OFFPATH_OFF("idns", IdentifyNamespace, nuse);
  OFFPATH_OFF("idns", IdentifyNamespace, nsfeat);
  OFFPATH_OFF("idns", IdentifyNamespace, nlbaf);
  OFFPATH_OFF("idns", IdentifyNamespace, flbas);
  OFFPATH_OFF("idns", IdentifyNamespace, mc);
  OFFPATH_OFF("idns", IdentifyNamespace, dpc);
  OFFPATH_OFF("idns", IdentifyNamespace, dps);
  OFFPATH_OFF("idns", IdentifyNamespace, nmic);
  OFFPATH_OFF("idns", IdentifyNamespace, rescap);
  OFFPATH_OFF("idns", IdentifyNamespace, fpi);
  OFFPATH_OFF("idns", IdentifyNamespace, dlfeat);
  OFFPATH_OFF("idns", IdentifyNamespace, nawun);
  OFFPATH_OFF("idns", IdentifyNamespace, nawupf);
  OFFPATH_OFF("idns", IdentifyNamespace, nacwu);
  OFFPATH_OFF("idns", IdentifyNamespace, nabsn);
  OFFPATH_OFF("idns", IdentifyNamespace, nabo);
  OFFPATH_OFF("idns", IdentifyNamespace, nabspf);
  OFFPATH_OFF("idns", IdentifyNamespace, noiob);
  OFFPATH_OFF("idns", IdentifyNamespace, nvmcap);
  layout.Add("idns.nvmcap.size", sizeof(IdentifyNamespace::nvmcap));
  OFFPATH_OFF("idns", IdentifyNamespace, npwg);
  OFFPATH_OFF("idns", IdentifyNamespace, npwa);
  OFFPATH_OFF("idns", IdentifyNamespace, npdg);
  OFFPATH_OFF("idns", IdentifyNamespace, npda);
  OFFPATH_OFF("idns", IdentifyNamespace, nows);
  OFFPATH_OFF("idns", IdentifyNamespace, anagrpid);
  OFFPATH_OFF("idns", IdentifyNamespace, nsattr);
  OFFPATH_OFF("idns", IdentifyNamespace, nvmsetid);
  OFFPATH_OFF("idns", IdentifyNamespace, endgid);
  OFFPATH_OFF("idns", IdentifyNamespace, nguid);
  layout.Add("idns.nguid.size", sizeof(IdentifyNamespace::nguid));
  OFFPATH_OFF("idns", IdentifyNamespace, eui64);
  layout.Add("idns.eui64.size", sizeof(IdentifyNamespace::eui64));
  OFFPATH_OFF("idns", IdentifyNamespace, lbaf);
  layout.Add("idns.lbaf.count", std::extent_v<decltype(IdentifyNamespace::lbaf)>);
  OFFPATH_OFF("idns", IdentifyNamespace, vs);
  layout.Add("idns.vs.size", sizeof(IdentifyNamespace::vs));
  OFFPATH_FIELD(idns, NSFEAT_THIN_PROVISIONING);
  OFFPATH_FIELD(idns, FLBAS_FORMAT);
  OFFPATH_FIELD(idns, FLBAS_EXTENDED);
  OFFPATH_FIELD(idns, DPS_PIT);
  OFFPATH_FIELD(idns, DPS_FIRST);
  OFFPATH_FIELD(idns, NMIC_SHARED);
  layout.Add("lbaf.size", sizeof(IdentifyNamespace::lbaf[0]));
  OFFPATH_FIELD(lbaf, MS);
  OFFPATH_FIELD(lbaf, LBADS);
  OFFPATH_FIELD(lbaf, RP);

  layout.Add("ns.list.size", sizeof(nv::NamespaceList));
  layout.Add("ns.list.max.entries", std::extent_v<decltype(nv::NamespaceList::ids)>);
  layout.Add("ns.id.desc.header.size", sizeof(nv::NsIdDescriptorHeader));
  OFFPATH_OFF("ns.id.desc", nv::NsIdDescriptorHeader, nidt);
  OFFPATH_OFF("ns.id.desc", nv::NsIdDescriptorHeader, nidl);
  layout.Add("ns.id.desc.nid", sizeof(nv::NsIdDescriptorHeader));
  OFFPATH_CONST(NS_ID_DESC_LIST_SIZE_BYTES);
  OFFPATH_ENUM(Nidt, EUI64);
  OFFPATH_ENUM(Nidt, NGUID);
  OFFPATH_ENUM(Nidt, UUID);
  OFFPATH_ENUM(Nidt, CSI);
  OFFPATH_ENUM(NidtLengthBytes, EUI64);
  OFFPATH_ENUM(NidtLengthBytes, NGUID);
  OFFPATH_ENUM(NidtLengthBytes, UUID);
  OFFPATH_ENUM(NidtLengthBytes, CSI);

  layout.Add("ctrl.list.size", sizeof(nv::ControllerList));
  OFFPATH_OFF("ctrl.list", nv::ControllerList, count);
  OFFPATH_OFF("ctrl.list", nv::ControllerList, ids);
  layout.Add("ctrl.list.max.entries", std::extent_v<decltype(nv::ControllerList::ids)>);

  layout.Add("seclist.size", sizeof(SecondaryControllerList));
  OFFPATH_OFF("seclist", SecondaryControllerList, numid);
  OFFPATH_OFF("seclist", SecondaryControllerList, entries);
  layout.Add("seclist.max.entries", std::extent_v<decltype(SecondaryControllerList::entries)>);
  layout.Add("seclist.entry.size", sizeof(SecondaryControllerEntry));
  OFFPATH_OFF("seclist.entry", SecondaryControllerEntry, scid);
  OFFPATH_OFF("seclist.entry", SecondaryControllerEntry, pcid);
  OFFPATH_OFF("seclist.entry", SecondaryControllerEntry, scs);
  OFFPATH_OFF("seclist.entry", SecondaryControllerEntry, vfn);
  OFFPATH_OFF("seclist.entry", SecondaryControllerEntry, nvq);
  OFFPATH_OFF("seclist.entry", SecondaryControllerEntry, nvi);
  OFFPATH_FIELD(seclist, ENTRY_SCS_ONLINE);

  layout.Add("pricap.size", sizeof(PrimaryControllerCaps));
  OFFPATH_OFF("pricap", PrimaryControllerCaps, cntlid);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, portid);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, crt);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vqfrt);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vqrfa);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vqrfap);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vqprt);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vqfrsm);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vqgran);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vifrt);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, virfa);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, virfap);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, viprt);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vifrsm);
  OFFPATH_OFF("pricap", PrimaryControllerCaps, vigran);
  OFFPATH_ENUM(PricapCrt, VQ);
  OFFPATH_ENUM(PricapCrt, VI);

  // Namespace and virtualization management.
  OFFPATH_FIELD(ns_mgmt, CDW10_SEL);
  OFFPATH_ENUM(NsManagementSel, CREATE);
  OFFPATH_ENUM(NsManagementSel, DELETE);
  OFFPATH_FIELD(ns_attach, CDW10_SEL);
  OFFPATH_ENUM(NsAttachmentSel, ATTACH);
  OFFPATH_ENUM(NsAttachmentSel, DETACH);
  OFFPATH_FIELD(virt_mgmt, CDW10_ACT);
  OFFPATH_FIELD(virt_mgmt, CDW10_RT);
  OFFPATH_FIELD(virt_mgmt, CDW10_CNTLID);
  OFFPATH_FIELD(virt_mgmt, CDW11_NR);
  OFFPATH_ENUM(VirtMgmtAction, PRIMARY_FLEXIBLE_ALLOCATION);
  OFFPATH_ENUM(VirtMgmtAction, SECONDARY_OFFLINE);
  OFFPATH_ENUM(VirtMgmtAction, SECONDARY_ASSIGN);
  OFFPATH_ENUM(VirtMgmtAction, SECONDARY_ONLINE);
  OFFPATH_ENUM(VirtResourceType, VQ);
  OFFPATH_ENUM(VirtResourceType, VI);

  // Log pages.
  OFFPATH_FIELD(get_log_page, CDW10_LID);
  OFFPATH_FIELD(get_log_page, CDW10_LSP);
  OFFPATH_FIELD(get_log_page, CDW10_RAE);
  OFFPATH_FIELD(get_log_page, CDW10_NUMDL);
  OFFPATH_FIELD(get_log_page, CDW11_NUMDU);
  OFFPATH_FIELD(get_log_page, CDW11_LSI);
  OFFPATH_ENUM(LogPageId, ERROR);
  OFFPATH_ENUM(LogPageId, SMART_HEALTH);
  OFFPATH_ENUM(LogPageId, FIRMWARE_SLOT);
  OFFPATH_ENUM(LogPageId, CHANGED_NS_LIST);
  OFFPATH_ENUM(LogPageId, COMMANDS_EFFECTS);

  layout.Add("error.log.entry.size", sizeof(ErrorLogEntry));
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, error_count);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, sqid);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, cid);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, status);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, param_error_location);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, lba);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, nsid);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, vs_info);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, trtype);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, command_specific);
  OFFPATH_OFF("error.log.entry", ErrorLogEntry, trtype_specific);

  layout.Add("smart.log.size", sizeof(SmartHealthLog));
  OFFPATH_OFF("smart.log", SmartHealthLog, critical_warning);
  OFFPATH_OFF("smart.log", SmartHealthLog, composite_temperature);
  OFFPATH_OFF("smart.log", SmartHealthLog, available_spare);
  OFFPATH_OFF("smart.log", SmartHealthLog, available_spare_threshold);
  OFFPATH_OFF("smart.log", SmartHealthLog, percentage_used);
  OFFPATH_OFF("smart.log", SmartHealthLog, endurance_group_warning);
  OFFPATH_OFF("smart.log", SmartHealthLog, data_units_read);
  OFFPATH_OFF("smart.log", SmartHealthLog, data_units_written);
  OFFPATH_OFF("smart.log", SmartHealthLog, host_read_commands);
  OFFPATH_OFF("smart.log", SmartHealthLog, host_write_commands);
  OFFPATH_OFF("smart.log", SmartHealthLog, controller_busy_time);
  OFFPATH_OFF("smart.log", SmartHealthLog, power_cycles);
  OFFPATH_OFF("smart.log", SmartHealthLog, power_on_hours);
  OFFPATH_OFF("smart.log", SmartHealthLog, unsafe_shutdowns);
  OFFPATH_OFF("smart.log", SmartHealthLog, media_errors);
  OFFPATH_OFF("smart.log", SmartHealthLog, num_error_log_entries);
  OFFPATH_OFF("smart.log", SmartHealthLog, warning_temp_time);
  OFFPATH_OFF("smart.log", SmartHealthLog, critical_temp_time);
  OFFPATH_OFF("smart.log", SmartHealthLog, temp_sensor);
  layout.Add("smart.log.counter.size", sizeof(SmartHealthLog::data_units_read));
  OFFPATH_CONST(SMART_DATA_UNIT_BYTES);

  // Features, asynchronous events, Format NVM.
  OFFPATH_FIELD(features, CDW10_FID);
  OFFPATH_FIELD(set_features, CDW10_SV);
  OFFPATH_FIELD(get_features, CDW10_SEL);
  OFFPATH_ENUM(FeatureId, ARBITRATION);
  OFFPATH_ENUM(FeatureId, POWER_MANAGEMENT);
  OFFPATH_ENUM(FeatureId, TEMPERATURE_THRESHOLD);
  OFFPATH_ENUM(FeatureId, ERROR_RECOVERY);
  OFFPATH_ENUM(FeatureId, VOLATILE_WRITE_CACHE);
  OFFPATH_ENUM(FeatureId, NUMBER_OF_QUEUES);
  OFFPATH_ENUM(FeatureId, INTERRUPT_COALESCING);
  OFFPATH_ENUM(FeatureId, INTERRUPT_VECTOR_CONFIG);
  OFFPATH_ENUM(FeatureId, ASYNC_EVENT_CONFIG);
  OFFPATH_ENUM(FeatureId, KEEP_ALIVE_TIMER);
  OFFPATH_ENUM(FeatureSelect, CURRENT);
  OFFPATH_ENUM(FeatureSelect, DEFAULT);
  OFFPATH_ENUM(FeatureSelect, SAVED);
  OFFPATH_ENUM(FeatureSelect, SUPPORTED_CAPABILITIES);
  OFFPATH_FIELD(number_of_queues, NSQR);
  OFFPATH_FIELD(number_of_queues, NCQR);
  OFFPATH_FIELD(interrupt_coalescing, THR);
  OFFPATH_FIELD(interrupt_coalescing, TIME);
  OFFPATH_CONST(INTERRUPT_COALESCING_TIME_UNIT_US);
  OFFPATH_FIELD(volatile_write_cache, WCE);
  OFFPATH_FIELD(aer, TYPE);
  OFFPATH_FIELD(aer, INFO);
  OFFPATH_FIELD(aer, LOG_PAGE);
  OFFPATH_ENUM(AsyncEventType, ERROR);
  OFFPATH_ENUM(AsyncEventType, SMART_HEALTH);
  OFFPATH_ENUM(AsyncEventType, NOTICE);
  OFFPATH_ENUM(AsyncEventType, IO_COMMAND_SET);
  OFFPATH_ENUM(AsyncEventType, VENDOR_SPECIFIC);
  OFFPATH_ENUM(AsyncEventNotice, NAMESPACE_ATTRIBUTE_CHANGED);
  OFFPATH_ENUM(AsyncEventNotice, FIRMWARE_ACTIVATION_STARTING);
  OFFPATH_ENUM(AsyncEventNotice, TELEMETRY_LOG_CHANGED);
  OFFPATH_ENUM(AsyncEventNotice, ANA_CHANGE);
  OFFPATH_FIELD(format_nvm, CDW10_LBAF);
  OFFPATH_FIELD(format_nvm, CDW10_MSET);
  OFFPATH_FIELD(format_nvm, CDW10_PI);
  OFFPATH_FIELD(format_nvm, CDW10_PIL);
  OFFPATH_FIELD(format_nvm, CDW10_SES);
  layout.Add("effects.log.size", sizeof(nv::CommandsEffectsLog));
  OFFPATH_OFF("effects.log", nv::CommandsEffectsLog, acs);
  OFFPATH_OFF("effects.log", nv::CommandsEffectsLog, iocs);
  OFFPATH_ENUM(CommandEffect, CSUPP);
  OFFPATH_ENUM(CommandEffect, LBCC);
  OFFPATH_ENUM(CommandEffect, NCC);
  OFFPATH_ENUM(CommandEffect, NIC);
  OFFPATH_ENUM(CommandEffect, CCC);
  OFFPATH_ENUM(FormatSes, NONE);
  OFFPATH_ENUM(FormatSes, USER_DATA_ERASE);
  OFFPATH_ENUM(FormatSes, CRYPTOGRAPHIC_ERASE);

  return layout.object();
}

#undef OFFPATH_OFF
#undef OFFPATH_CONST
#undef OFFPATH_FIELD
#undef OFFPATH_ENUM

// ---------------------------------------------------------------------------
// specEncode: the C++ half of the shared test vectors.

// Reads an unsigned field from the vector's `fields` object: a number, a
// bigint, a boolean (for flags) or a "0x..." string (for 64-bit values JSON
// numbers cannot hold). Missing fields read as `fallback`.
uint64_t U(const Napi::Object& fields, const char* name, uint64_t fallback = 0) {
  Napi::Env env = fields.Env();
  Napi::Value value = fields.Get(name);
  if (value.IsUndefined() || value.IsNull()) return fallback;
  if (value.IsBoolean()) return value.As<Napi::Boolean>().Value() ? 1 : 0;
  if (value.IsNumber()) {
    double number = value.As<Napi::Number>().DoubleValue();
    if (!(number >= 0 && number <= 9007199254740991.0) || number != static_cast<double>(static_cast<uint64_t>(number))) {
      ThrowRange(env, std::string("specEncode: field ") + name + " is not a non-negative safe integer");
    }
    return static_cast<uint64_t>(number);
  }
  if (value.IsBigInt()) {
    bool lossless = false;
    uint64_t number = value.As<Napi::BigInt>().Uint64Value(&lossless);
    if (!lossless) ThrowRange(env, std::string("specEncode: field ") + name + " does not fit 64 bits");
    return number;
  }
  if (value.IsString()) {
    std::string text = value.As<Napi::String>().Utf8Value();
    char* end = nullptr;
    errno = 0;
    unsigned long long number = std::strtoull(text.c_str(), &end, 0);
    if (text.empty() || *end != '\0' || errno != 0) {
      ThrowRange(env, std::string("specEncode: field ") + name + " is not an integer: " + text);
    }
    return number;
  }
  ThrowType(env, std::string("specEncode: field ") + name + " has an unsupported type");
}

uint32_t U32(const Napi::Object& fields, const char* name, uint64_t fallback = 0) {
  return static_cast<uint32_t>(U(fields, name, fallback));
}

std::vector<uint8_t> HexBytes(Napi::Env env, const std::string& hex) {
  std::vector<uint8_t> out;
  if (hex.size() % 2 != 0) ThrowRange(env, "specEncode: odd-length hex string");
  for (size_t i = 0; i < hex.size(); i += 2) {
    out.push_back(static_cast<uint8_t>(std::stoul(hex.substr(i, 2), nullptr, 16)));
  }
  return out;
}

Napi::Object SubObject(const Napi::Object& fields, const char* name) {
  Napi::Value value = fields.Get(name);
  if (!value.IsObject()) ThrowType(fields.Env(), std::string("specEncode: field ") + name + " must be an object");
  return value.As<Napi::Object>();
}

Napi::Array ArrayField(const Napi::Object& fields, const char* name) {
  Napi::Value value = fields.Get(name);
  if (!value.IsArray()) ThrowType(fields.Env(), std::string("specEncode: field ") + name + " must be an array");
  return value.As<Napi::Array>();
}

template <typename T>
Napi::Value Bytes(Napi::Env env, const T& value) {
  return Napi::Buffer<uint8_t>::Copy(env, reinterpret_cast<const uint8_t*>(&value), sizeof(value));
}

nv::SglDescriptor MakeSgl(const Napi::Object& f) {
  nv::SglDescriptor sgl{};
  sgl.address = U(f, "address");
  sgl.length = U32(f, "length");
  sgl.identifier = nv::sglIdentifier(static_cast<nv::SglType>(U(f, "type")), static_cast<nv::SglSubtype>(U(f, "subtype")));
  return sgl;
}

// The command header most admin and I/O builders share.
nv::Sqe Header(const Napi::Object& f, uint8_t opc) {
  nv::Sqe sqe{};
  sqe.opc = opc;
  sqe.cid = static_cast<uint16_t>(U(f, "cid"));
  sqe.nsid = U32(f, "nsid");
  sqe.dptr.prp.prp1 = U(f, "prp1");
  sqe.dptr.prp.prp2 = U(f, "prp2");
  return sqe;
}

Napi::Value EncodeSqe(const Napi::Object& f) {
  nv::Sqe sqe{};
  sqe.opc = static_cast<uint8_t>(U(f, "opc"));
  sqe.flags = static_cast<uint8_t>(nv::sqe::FUSE.put(static_cast<uint8_t>(U(f, "fuse"))) |
                                   nv::sqe::PSDT.put(static_cast<uint8_t>(U(f, "psdt"))));
  sqe.cid = static_cast<uint16_t>(U(f, "cid"));
  sqe.nsid = U32(f, "nsid");
  sqe.cdw2 = U32(f, "cdw2");
  sqe.cdw3 = U32(f, "cdw3");
  sqe.mptr = U(f, "mptr");
  if (f.Has("sgl1")) {
    sqe.dptr.sgl1 = MakeSgl(SubObject(f, "sgl1"));
  } else {
    sqe.dptr.prp.prp1 = U(f, "prp1");
    sqe.dptr.prp.prp2 = U(f, "prp2");
  }
  sqe.cdw10 = U32(f, "cdw10");
  sqe.cdw11 = U32(f, "cdw11");
  sqe.cdw12 = U32(f, "cdw12");
  sqe.cdw13 = U32(f, "cdw13");
  sqe.cdw14 = U32(f, "cdw14");
  sqe.cdw15 = U32(f, "cdw15");
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeRw(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, static_cast<uint8_t>(U(f, "opc")));
  sqe.mptr = U(f, "mptr");
  nv::setSlba(sqe, U(f, "slba"));
  sqe.cdw12 = nv::rw::CDW12_NLB.put(U32(f, "nlb")) | nv::rw::CDW12_DEAC.put(U32(f, "deac")) |
              nv::rw::CDW12_PRINFO.put(U32(f, "prinfo")) | nv::rw::CDW12_FUA.put(U32(f, "fua")) |
              nv::rw::CDW12_LR.put(U32(f, "lr"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeCreateIoSq(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::CREATE_IO_SQ));
  namespace q = nv::create_io_sq;
  sqe.cdw10 = q::CDW10_QID.put(U32(f, "qid")) | q::CDW10_QSIZE.put(U32(f, "qsize"));
  sqe.cdw11 = q::CDW11_PC.put(U32(f, "pc")) | q::CDW11_QPRIO.put(U32(f, "qprio")) | q::CDW11_CQID.put(U32(f, "cqid"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeCreateIoCq(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::CREATE_IO_CQ));
  namespace q = nv::create_io_cq;
  sqe.cdw10 = q::CDW10_QID.put(U32(f, "qid")) | q::CDW10_QSIZE.put(U32(f, "qsize"));
  sqe.cdw11 = q::CDW11_PC.put(U32(f, "pc")) | q::CDW11_IEN.put(U32(f, "ien")) | q::CDW11_IV.put(U32(f, "iv"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeDeleteIoQueue(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, static_cast<uint8_t>(U(f, "opc")));
  sqe.cdw10 = nv::delete_io_queue::CDW10_QID.put(U32(f, "qid"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeAbort(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::ABORT));
  sqe.cdw10 = nv::abort_cmd::CDW10_SQID.put(U32(f, "sqid")) | nv::abort_cmd::CDW10_CID.put(U32(f, "abortCid"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeIdentify(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::IDENTIFY));
  sqe.cdw10 = nv::identify::CDW10_CNS.put(U32(f, "cns")) | nv::identify::CDW10_CNTID.put(U32(f, "cntid"));
  sqe.cdw11 = nv::identify::CDW11_CSI.put(U32(f, "csi"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeGetLogPage(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::GET_LOG_PAGE));
  namespace g = nv::get_log_page;
  uint32_t numd = U32(f, "numd");
  uint64_t offset = U(f, "offset");
  sqe.cdw10 = g::CDW10_LID.put(U32(f, "lid")) | g::CDW10_LSP.put(U32(f, "lsp")) | g::CDW10_RAE.put(U32(f, "rae")) |
              g::CDW10_NUMDL.put(numd & 0xffff);
  sqe.cdw11 = g::CDW11_NUMDU.put(numd >> 16) | g::CDW11_LSI.put(U32(f, "lsi"));
  sqe.cdw12 = static_cast<uint32_t>(offset);
  sqe.cdw13 = static_cast<uint32_t>(offset >> 32);
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeSetFeatures(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::SET_FEATURES));
  sqe.cdw10 = nv::features::CDW10_FID.put(U32(f, "fid")) | nv::set_features::CDW10_SV.put(U32(f, "sv"));
  sqe.cdw11 = U32(f, "cdw11");
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeGetFeatures(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::GET_FEATURES));
  sqe.cdw10 = nv::features::CDW10_FID.put(U32(f, "fid")) | nv::get_features::CDW10_SEL.put(U32(f, "sel"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeDsm(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::NvmOpcode::DATASET_MANAGEMENT));
  sqe.cdw10 = nv::dsm::CDW10_NR.put(U32(f, "nr"));
  sqe.cdw11 = nv::dsm::CDW11_IDR.put(U32(f, "idr")) | nv::dsm::CDW11_IDW.put(U32(f, "idw")) |
              nv::dsm::CDW11_AD.put(U32(f, "ad"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeNsManagement(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::NAMESPACE_MANAGEMENT));
  sqe.cdw10 = nv::ns_mgmt::CDW10_SEL.put(U32(f, "sel"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeNsAttachment(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::NAMESPACE_ATTACHMENT));
  sqe.cdw10 = nv::ns_attach::CDW10_SEL.put(U32(f, "sel"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeVirtMgmt(const Napi::Object& f) {
  nv::Sqe sqe = Header(f, nv::raw(nv::AdminOpcode::VIRTUALIZATION_MANAGEMENT));
  namespace v = nv::virt_mgmt;
  sqe.cdw10 = v::CDW10_ACT.put(U32(f, "act")) | v::CDW10_RT.put(U32(f, "rt")) | v::CDW10_CNTLID.put(U32(f, "cntlid"));
  sqe.cdw11 = v::CDW11_NR.put(U32(f, "nr"));
  return Bytes(f.Env(), sqe);
}

Napi::Value EncodeCqe(const Napi::Object& f) {
  nv::Cqe cqe{};
  cqe.dw0 = U32(f, "dw0");
  cqe.dw1 = U32(f, "dw1");
  cqe.sqhd = static_cast<uint16_t>(U(f, "sqhd"));
  cqe.sqid = static_cast<uint16_t>(U(f, "sqid"));
  cqe.cid = static_cast<uint16_t>(U(f, "cid"));
  cqe.status = nv::makeStatus(static_cast<nv::StatusCodeType>(U(f, "sct")), static_cast<uint8_t>(U(f, "sc")),
                              U(f, "dnr") != 0, U(f, "more") != 0, static_cast<uint8_t>(U(f, "crd")),
                              static_cast<uint8_t>(U(f, "phase")));
  return Bytes(f.Env(), cqe);
}

Napi::Value EncodeDsmRange(const Napi::Object& f) {
  nv::DsmRange range{};
  range.attributes = U32(f, "attributes");
  range.nlb = U32(f, "nlb");
  range.slba = U(f, "slba");
  return Bytes(f.Env(), range);
}

nv::SecondaryControllerEntry MakeSecondaryEntry(const Napi::Object& f) {
  nv::SecondaryControllerEntry entry{};
  entry.scid = static_cast<uint16_t>(U(f, "scid"));
  entry.pcid = static_cast<uint16_t>(U(f, "pcid"));
  entry.scs = nv::seclist::ENTRY_SCS_ONLINE.put(static_cast<uint8_t>(U(f, "online")));
  entry.vfn = static_cast<uint16_t>(U(f, "vfn"));
  entry.nvq = static_cast<uint16_t>(U(f, "nvq"));
  entry.nvi = static_cast<uint16_t>(U(f, "nvi"));
  return entry;
}

Napi::Value EncodeSeclist(const Napi::Object& f) {
  Napi::Array entries = ArrayField(f, "entries");
  nv::SecondaryControllerList list{};
  if (entries.Length() > std::extent_v<decltype(list.entries)>) ThrowRange(f.Env(), "specEncode: too many entries");
  list.numid = static_cast<uint8_t>(entries.Length());
  for (uint32_t i = 0; i < entries.Length(); i++) {
    list.entries[i] = MakeSecondaryEntry(entries.Get(i).As<Napi::Object>());
  }
  return Bytes(f.Env(), list);
}

Napi::Value EncodeCtrlList(const Napi::Object& f) {
  Napi::Array ids = ArrayField(f, "ids");
  nv::ControllerList list{};
  if (ids.Length() > std::extent_v<decltype(list.ids)>) ThrowRange(f.Env(), "specEncode: too many ids");
  list.count = static_cast<uint16_t>(ids.Length());
  for (uint32_t i = 0; i < ids.Length(); i++) {
    list.ids[i] = static_cast<uint16_t>(ids.Get(i).As<Napi::Number>().Uint32Value());
  }
  return Bytes(f.Env(), list);
}

Napi::Value EncodeNsIdDesc(const Napi::Object& f) {
  std::vector<uint8_t> nid = HexBytes(f.Env(), f.Get("nid").As<Napi::String>().Utf8Value());
  nv::NsIdDescriptorHeader header{};
  header.nidt = static_cast<uint8_t>(U(f, "nidt"));
  header.nidl = static_cast<uint8_t>(nid.size());
  std::vector<uint8_t> out(sizeof(header) + nid.size());
  std::memcpy(out.data(), &header, sizeof(header));
  std::memcpy(out.data() + sizeof(header), nid.data(), nid.size());
  return Napi::Buffer<uint8_t>::Copy(f.Env(), out.data(), out.size());
}

Napi::Value EncodeNsCreateData(const Napi::Object& f) {
  nv::IdentifyNamespace ns{};
  ns.nsze = U(f, "nsze");
  ns.ncap = U(f, "ncap");
  ns.flbas = static_cast<uint8_t>(U(f, "flbas"));
  ns.dps = static_cast<uint8_t>(U(f, "dps"));
  ns.nmic = nv::idns::NMIC_SHARED.put(static_cast<uint8_t>(U(f, "nmic")));
  return Bytes(f.Env(), ns);
}

Napi::Value EncodeLbaf(const Napi::Object& f) {
  uint32_t lbaf = nv::lbaf::MS.put(U32(f, "ms")) | nv::lbaf::LBADS.put(U32(f, "lbads")) | nv::lbaf::RP.put(U32(f, "rp"));
  return Bytes(f.Env(), lbaf);
}

Napi::Value EncodeCap(const Napi::Object& f) {
  namespace c = nv::cap;
  uint64_t cap = c::MQES.put(U(f, "mqes")) | c::CQR.put(U(f, "cqr")) | c::AMS.put(U(f, "ams")) | c::TO.put(U(f, "to")) |
                 c::DSTRD.put(U(f, "dstrd")) | c::NSSRS.put(U(f, "nssrs")) | c::CSS.put(U(f, "css")) |
                 c::BPS.put(U(f, "bps")) | c::MPSMIN.put(U(f, "mpsmin")) | c::MPSMAX.put(U(f, "mpsmax")) |
                 c::PMRS.put(U(f, "pmrs")) | c::CMBS.put(U(f, "cmbs"));
  return Bytes(f.Env(), cap);
}

Napi::Value EncodeCc(const Napi::Object& f) {
  namespace c = nv::cc;
  uint32_t cc = c::EN.put(U32(f, "en")) | c::CSS.put(U32(f, "css")) | c::MPS.put(U32(f, "mps")) |
                c::AMS.put(U32(f, "ams")) | c::SHN.put(U32(f, "shn")) | c::IOSQES.put(U32(f, "iosqes")) |
                c::IOCQES.put(U32(f, "iocqes"));
  return Bytes(f.Env(), cc);
}

Napi::Value EncodeCsts(const Napi::Object& f) {
  namespace c = nv::csts;
  uint32_t csts = c::RDY.put(U32(f, "rdy")) | c::CFS.put(U32(f, "cfs")) | c::SHST.put(U32(f, "shst")) |
                  c::NSSRO.put(U32(f, "nssro")) | c::PP.put(U32(f, "pp"));
  return Bytes(f.Env(), csts);
}

Napi::Value EncodeAqa(const Napi::Object& f) {
  uint32_t aqa = nv::aqa::ASQS.put(U32(f, "asqs")) | nv::aqa::ACQS.put(U32(f, "acqs"));
  return Bytes(f.Env(), aqa);
}

Napi::Value EncodeVs(const Napi::Object& f) {
  uint32_t vs = nv::vs::MAJOR.put(U32(f, "major")) | nv::vs::MINOR.put(U32(f, "minor")) |
                nv::vs::TERTIARY.put(U32(f, "tertiary"));
  return Bytes(f.Env(), vs);
}

Napi::Value EncodeAerDw0(const Napi::Object& f) {
  uint32_t dw0 = nv::aer::TYPE.put(U32(f, "type")) | nv::aer::INFO.put(U32(f, "info")) |
                 nv::aer::LOG_PAGE.put(U32(f, "logPage"));
  return Bytes(f.Env(), dw0);
}

Napi::Value EncodeNumberOfQueues(const Napi::Object& f) {
  uint32_t dw = nv::number_of_queues::NSQR.put(U32(f, "nsqr")) | nv::number_of_queues::NCQR.put(U32(f, "ncqr"));
  return Bytes(f.Env(), dw);
}

Napi::Value EncodeInterruptCoalescing(const Napi::Object& f) {
  uint32_t dw = nv::interrupt_coalescing::THR.put(U32(f, "thr")) |
                nv::interrupt_coalescing::TIME.put(U32(f, "timeUnits"));
  return Bytes(f.Env(), dw);
}

Napi::Value EncodeErrorLogEntry(const Napi::Object& f) {
  nv::ErrorLogEntry entry{};
  entry.error_count = U(f, "errorCount");
  entry.sqid = static_cast<uint16_t>(U(f, "sqid"));
  entry.cid = static_cast<uint16_t>(U(f, "cid"));
  entry.status = static_cast<uint16_t>(U(f, "status"));
  entry.param_error_location = static_cast<uint16_t>(U(f, "paramErrorLocation", 0xffff));
  entry.lba = U(f, "lba");
  entry.nsid = U32(f, "nsid");
  entry.command_specific = U(f, "commandSpecific");
  return Bytes(f.Env(), entry);
}

Napi::Value EncodeDoorbell(const Napi::Object& f) {
  uint32_t qid = U32(f, "qid");
  uint32_t dstrd = U32(f, "dstrd");
  uint32_t offsets[2] = {nv::sqTailDoorbellOffset(qid, dstrd), nv::cqHeadDoorbellOffset(qid, dstrd)};
  return Bytes(f.Env(), offsets);
}

Napi::Value EncodePrp(const Napi::Object& f) {
  uint64_t offset = U(f, "offset");
  uint64_t length = U(f, "length");
  uint64_t page = U(f, "pageSize");
  if (page < nv::MEMORY_PAGE_SIZE_MIN_BYTES || offset >= page) ThrowRange(f.Env(), "specEncode: bad PRP arguments");
  uint32_t counts[2] = {static_cast<uint32_t>(nv::prpEntriesNeeded(offset, length, page)),
                        static_cast<uint32_t>(nv::prpListPagesNeeded(offset, length, page))};
  return Bytes(f.Env(), counts);
}

// Empty when the code has no name (the TypeScript side then prints SCT<n>_SC0x<hh>).
Napi::Value EncodeStatusName(const Napi::Object& f) {
  const char* name = nv::statusName(static_cast<uint8_t>(U(f, "sct")), static_cast<uint8_t>(U(f, "sc")));
  std::string text = name == nullptr ? "" : name;
  return Napi::Buffer<uint8_t>::Copy(f.Env(), reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

struct Encoder {
  const char* kind;
  Napi::Value (*encode)(const Napi::Object& fields);
};

constexpr Encoder kEncoders[] = {
    {"sqe", EncodeSqe},
    {"rw", EncodeRw},
    {"create_io_sq", EncodeCreateIoSq},
    {"create_io_cq", EncodeCreateIoCq},
    {"delete_io_queue", EncodeDeleteIoQueue},
    {"abort", EncodeAbort},
    {"identify", EncodeIdentify},
    {"get_log_page", EncodeGetLogPage},
    {"set_features", EncodeSetFeatures},
    {"get_features", EncodeGetFeatures},
    {"dsm", EncodeDsm},
    {"ns_management", EncodeNsManagement},
    {"ns_attachment", EncodeNsAttachment},
    {"virt_mgmt", EncodeVirtMgmt},
    {"cqe", EncodeCqe},
    {"sgl", [](const Napi::Object& f) { return Bytes(f.Env(), MakeSgl(f)); }},
    {"dsm_range", EncodeDsmRange},
    {"seclist_entry", [](const Napi::Object& f) { return Bytes(f.Env(), MakeSecondaryEntry(f)); }},
    {"seclist", EncodeSeclist},
    {"ctrl_list", EncodeCtrlList},
    {"ns_id_desc", EncodeNsIdDesc},
    {"ns_create_data", EncodeNsCreateData},
    {"lbaf", EncodeLbaf},
    {"cap", EncodeCap},
    {"cc", EncodeCc},
    {"csts", EncodeCsts},
    {"aqa", EncodeAqa},
    {"vs", EncodeVs},
    {"aer_dw0", EncodeAerDw0},
    {"number_of_queues", EncodeNumberOfQueues},
    {"interrupt_coalescing", EncodeInterruptCoalescing},
    {"error_log_entry", EncodeErrorLogEntry},
    {"doorbell", EncodeDoorbell},
    {"prp", EncodePrp},
    {"status_name", EncodeStatusName},
};

Napi::Value SpecEncode(const Napi::CallbackInfo& info) {
  std::string kind = ArgString(info, 0, "kind");
  if (!info[1].IsObject()) ThrowType(info.Env(), "specEncode: fields must be an object");
  Napi::Object fields = info[1].As<Napi::Object>();
  for (const Encoder& encoder : kEncoders) {
    if (kind == encoder.kind) return encoder.encode(fields);
  }
  ThrowRange(info.Env(), "specEncode: unknown kind " + kind);
}

Napi::Value SpecEncodeKinds(const Napi::CallbackInfo& info) {
  Napi::Array kinds = Napi::Array::New(info.Env());
  uint32_t i = 0;
  for (const Encoder& encoder : kEncoders) kinds.Set(i++, encoder.kind);
  return kinds;
}

}  // namespace

void RegisterSpecLayout(Napi::Env env, Napi::Object exports) {
  exports.Set("specLayout", BuildLayout(env));
  exports.Set("specEncode", Napi::Function::New(env, SpecEncode, "specEncode"));
  exports.Set("specEncodeKinds", Napi::Function::New(env, SpecEncodeKinds, "specEncodeKinds"));
}

}  // namespace offpath
