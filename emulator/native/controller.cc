// Registers, the enable/reset/shutdown state machine, queue processing and
// completion posting. Command handlers live in admin_commands.cc and
// io_commands.cc.
#include "controller.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cstddef>
#include <cstring>

#include "offpath/nvme_spec.h"
#include "commands.h"
#include "subsystem.h"

namespace offpath::emu {

namespace spec = offpath::nvme;

namespace {

// Commands executed from one SQ per round before moving to the next, so one
// busy queue cannot starve the others (round-robin arbitration, burst 32).
constexpr uint32_t kArbitrationBurst = 32;
constexpr size_t kErrorLogEntries = 64;
constexpr uint8_t kTimeout500ms = 10;        // CAP.TO: 5 s

constexpr uint32_t kRegCap = offsetof(spec::ControllerRegisters, cap);
constexpr uint32_t kRegVs = offsetof(spec::ControllerRegisters, vs);
constexpr uint32_t kRegCc = offsetof(spec::ControllerRegisters, cc);
constexpr uint32_t kRegCsts = offsetof(spec::ControllerRegisters, csts);
constexpr uint32_t kRegAqa = offsetof(spec::ControllerRegisters, aqa);
constexpr uint32_t kRegAsq = offsetof(spec::ControllerRegisters, asq);
constexpr uint32_t kRegAcq = offsetof(spec::ControllerRegisters, acq);
constexpr uint32_t kCstsRdy = spec::csts::RDY.put(1);
constexpr uint32_t kCstsCfs = spec::csts::CFS.put(1);

volatile uint32_t* Word(uint8_t* bar, uint32_t offset) {
  return reinterpret_cast<volatile uint32_t*>(bar + offset);
}

}  // namespace

Controller::Controller(Subsystem* subsystem, uint16_t cntlid, int bar_fd, uint8_t* bar)
    : subsystem_(subsystem), cntlid_(cntlid), bar_fd_(bar_fd), bar_(bar) {
  InitRegisters();
  // The PF is always online; secondaries start offline until Virtualization
  // Management brings them online.
  online_.store(primary(), std::memory_order_release);
}

Controller::~Controller() {
  for (int fd : interrupt_fds_)
    if (fd >= 0) close(fd);
}

uint32_t Controller::ReadRegister32(uint32_t offset) const {
  uint32_t value = *Word(bar_, offset);
  std::atomic_thread_fence(std::memory_order_acquire);
  return value;
}

uint64_t Controller::ReadRegister64(uint32_t offset) const {
  return ReadRegister32(offset) | (uint64_t{ReadRegister32(offset + 4)} << 32);
}

void Controller::WriteRegister32(uint32_t offset, uint32_t value) {
  std::atomic_thread_fence(std::memory_order_release);
  *Word(bar_, offset) = value;
}

void Controller::WriteRegister64(uint32_t offset, uint64_t value) {
  WriteRegister32(offset, static_cast<uint32_t>(value));
  WriteRegister32(offset + 4, static_cast<uint32_t>(value >> 32));
}

void Controller::InitRegisters() {
  // CAP: MQES, contiguous queues required, TO, DSTRD 0, NVM command set,
  // MPSMIN = MPSMAX = 4 KiB.
  uint64_t cap = spec::cap::MQES.put(kMaxQueueEntries - 1) | spec::cap::CQR.put(1) |
                 spec::cap::TO.put(kTimeout500ms) | spec::cap::CSS.put(spec::raw(spec::CapCss::NVM));
  WriteRegister64(kRegCap, cap);
  WriteRegister32(kRegVs, 0x00010400);  // NVMe 1.4
  WriteRegister32(kRegCc, 0);
  WriteRegister32(kRegCsts, 0);
  WriteRegister32(kRegAqa, 0);
  WriteRegister64(kRegAsq, 0);
  WriteRegister64(kRegAcq, 0);
  for (uint32_t offset = kDoorbellBase; offset < kEmulatorPageOffset; offset += 4) WriteRegister32(offset, 0);
  last_cc_ = 0;
}

void Controller::SetFatal() {
  fatal_ = true;
  WriteRegister32(kRegCsts, ReadRegister32(kRegCsts) | kCstsCfs);
}

// Deletes every queue and returns to the disabled state (CC.EN = 0, a
// controller-level reset, or a function-level reset when the host goes away).
void Controller::Reset() {
  for (auto& sq : sqs_) sq = SubmissionQueue{};
  for (auto& cq : cqs_) cq = CompletionQueue{};
  // Doorbells belong to queues that no longer exist: a re-enabled admin queue
  // must start at tail 0 / head 0, not replay or wait on stale values.
  for (uint32_t offset = kDoorbellBase; offset < kDoorbellBase + 8 * (kMaxQueueId + 1); offset += 4)
    WriteRegister32(offset, 0);
  enabled_ = false;
  fatal_ = false;
  shut_down_ = false;
  granted_sq_ = granted_cq_ = 0;
  aer_cids_.clear();
  pending_events_.clear();
  masked_event_types_ = 0;
  coalescing_threshold_ = 0;
  coalescing_time_100us_ = 0;
  vector_coalescing_disabled_ = 0;
  async_event_config_ = 0x100;
  stats_.resets++;
}

void Controller::HandleControllerConfiguration(uint32_t cc) {
  uint32_t previous = last_cc_;
  last_cc_ = cc;
  bool was_enabled = spec::cc::EN.get(previous);
  bool enable = spec::cc::EN.get(cc);
  if (was_enabled && !enable) {
    Reset();
    WriteRegister32(kRegCsts, 0);
    return;
  }
  if (!was_enabled && enable) {
    Enable(cc);
    return;
  }
  uint32_t shn = spec::cc::SHN.get(cc);
  uint32_t previous_shn = spec::cc::SHN.get(previous);
  if (enabled_ && shn != 0 && previous_shn == 0) {
    // Normal or abrupt shutdown: make everything durable, then report done.
    WriteRegister32(kRegCsts, spec::csts::SHST.set(ReadRegister32(kRegCsts),
                                                   spec::raw(spec::ShutdownStatus::OCCURRING)));
    subsystem_->store().Flush();
    shut_down_ = true;
    WriteRegister32(kRegCsts, spec::csts::SHST.set(ReadRegister32(kRegCsts),
                                                   spec::raw(spec::ShutdownStatus::COMPLETE)));
  }
}

void Controller::Enable(uint32_t cc) {
  Reset();
  uint32_t mps = spec::cc::MPS.get(cc);
  uint32_t css = spec::cc::CSS.get(cc);
  uint32_t iosqes = spec::cc::IOSQES.get(cc);
  uint32_t iocqes = spec::cc::IOCQES.get(cc);
  uint32_t aqa = ReadRegister32(kRegAqa);
  uint32_t asqs = spec::aqa::ASQS.get(aqa) + 1;
  uint32_t acqs = spec::aqa::ACQS.get(aqa) + 1;
  uint64_t asq = ReadRegister64(kRegAsq);
  uint64_t acq = ReadRegister64(kRegAcq);
  // A secondary controller that is offline cannot be enabled; bad settings
  // are a fatal status, as on hardware.
  bool valid = online() && mps == 0 && css == spec::raw(spec::CcCss::NVM) && iosqes == spec::SQE_SIZE_LOG2 &&
               iocqes == spec::CQE_SIZE_LOG2 && asqs >= 2 && acqs >= 2 &&
               asq % kPageBytes == 0 && acq % kPageBytes == 0;
  uint8_t* sq_base = valid ? regions_.Translate(asq, uint64_t{asqs} * 64) : nullptr;
  uint8_t* cq_base = valid ? regions_.Translate(acq, uint64_t{acqs} * 16) : nullptr;
  if (sq_base == nullptr || cq_base == nullptr) {
    SetFatal();
    return;
  }
  sqs_[0] = SubmissionQueue{true, 0, asqs, 0, sq_base, asq, UINT32_MAX};
  CompletionQueue admin_cq;
  admin_cq.exists = true;
  admin_cq.entries = acqs;
  admin_cq.base = cq_base;
  admin_cq.iova = acq;
  admin_cq.interrupts = true;
  admin_cq.vector = 0;
  admin_cq.sq_count = 1;
  cqs_[0] = admin_cq;
  enabled_ = true;
  namespace_epoch_ = UINT64_MAX;
  WriteRegister32(kRegCsts, kCstsRdy);
}

void Controller::SetOnline(bool online) {
  std::lock_guard<std::mutex> lock(mutex_);
  online_.store(online, std::memory_order_release);
  if (!online && enabled_) {
    // Taking a VF offline resets it; the host sees RDY drop and CFS set, so
    // a driver waiting on it learns at once that its controller is gone.
    Reset();
    WriteRegister32(kRegCsts, kCstsCfs);
    fatal_ = true;
  }
}

void Controller::DetachHost() {
  std::lock_guard<std::mutex> lock(mutex_);
  Reset();
  regions_.Clear();
  for (int& fd : interrupt_fds_) {
    if (fd >= 0) close(fd);
    fd = -1;
  }
  InitRegisters();
}

std::string Controller::MapDma(uint64_t iova, uint64_t length_bytes, int fd, std::string* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  return regions_.Add(iova, length_bytes, fd, error);
}

std::string Controller::UnmapDma(uint64_t iova, std::string* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  const DmaRegion* region = regions_.Find(iova);
  if (region == nullptr || region->iova != iova) {
    *error = "no region is registered at that IOVA";
    return "ENOENT";
  }
  // Queue memory cannot go while the queue exists: the poller holds raw
  // pointers into it.
  auto inside = [region](uint64_t address) { return address - region->iova < region->length_bytes; };
  for (const auto& sq : sqs_) {
    if (sq.exists && inside(sq.iova)) {
      *error = "the region holds a live submission queue";
      return "EBUSY";
    }
  }
  for (const auto& cq : cqs_) {
    if (cq.exists && inside(cq.iova)) {
      *error = "the region holds a live completion queue";
      return "EBUSY";
    }
  }
  regions_.Remove(iova);
  return "";
}

std::string Controller::SetInterruptFd(uint16_t vector, int fd, std::string* error) {
  std::lock_guard<std::mutex> lock(mutex_);
  uint16_t vectors = primary() ? kMaxQueueId + 1 : assigned_vi_;
  if (vector >= vectors && !(vector == 0 && !primary())) {
    *error = "interrupt vector out of range for this controller";
    return "ERANGE";
  }
  if (interrupt_fds_.size() <= vector) interrupt_fds_.resize(vector + 1, -1);
  if (interrupt_fds_[vector] >= 0) close(interrupt_fds_[vector]);
  interrupt_fds_[vector] = fd;
  return "";
}

uint32_t Controller::CompletionSpace(uint16_t cqid) {
  CompletionQueue& cq = cqs_[cqid];
  uint32_t head = ReadRegister32(kDoorbellBase + 8 * cqid + 4);
  if (head >= cq.entries) {
    if (head != cq.bad_head) {
      cq.bad_head = head;
      PostInvalidDoorbellEvent();
    }
  } else {
    cq.head = head;
  }
  return (cq.head + cq.entries - cq.tail - 1) % cq.entries;
}

void Controller::PostCompletion(uint16_t sqid, uint16_t cid, const Completion& completion, uint16_t cqid) {
  CompletionQueue& cq = cqs_[cqid];
  uint8_t* entry = cq.base + size_t{cq.tail} * 16;
  uint16_t sq_head = static_cast<uint16_t>(sqs_[sqid].head);
  uint32_t body[3] = {completion.dw0, completion.dw1, uint32_t{sq_head} | (uint32_t{sqid} << 16)};
  memcpy(entry, body, sizeof body);
  uint16_t status = spec::makeStatus(static_cast<spec::StatusCodeType>(status::TypeOf(completion.status)),
                                     status::CodeOf(completion.status), completion.dnr, false, 0, cq.phase);
  // The status word with the phase tag is published last: once the host sees
  // the new phase, the rest of the entry is already in place.
  std::atomic_thread_fence(std::memory_order_release);
  *reinterpret_cast<volatile uint32_t*>(entry + 12) = uint32_t{cid} | (uint32_t{status} << 16);
  if (++cq.tail == cq.entries) {
    cq.tail = 0;
    cq.phase ^= 1;
  }
  if (cq.interrupts && cq.unsignalled++ == 0) cq.first_unsignalled = std::chrono::steady_clock::now();
}

void Controller::SignalInterrupt(CompletionQueue& cq) {
  cq.unsignalled = 0;
  if (cq.vector < interrupt_fds_.size() && interrupt_fds_[cq.vector] >= 0) {
    uint64_t one = 1;
    // A full counter means the host has not read a pending interrupt yet:
    // it will see these completions when it does.
    (void)!write(interrupt_fds_[cq.vector], &one, sizeof one);
  }
}

void Controller::FlushInterrupts() {
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return;
  for (auto& cq : cqs_)
    if (cq.exists && cq.unsignalled > 0) SignalInterrupt(cq);
}

void Controller::RecordError(uint16_t sqid, uint16_t cid, const Completion& completion, uint32_t nsid) {
  uint16_t status = spec::makeStatus(static_cast<spec::StatusCodeType>(status::TypeOf(completion.status)),
                                     status::CodeOf(completion.status), completion.dnr);
  rejections_[completion.status]++;
  error_count_++;
  error_log_.push_front(ErrorEntry{error_count_, sqid, cid, status, completion.parameter_location, completion.lba, nsid});
  if (error_log_.size() > kErrorLogEntries) error_log_.pop_back();
}

void Controller::PostAsyncEvent(spec::AsyncEventType type, uint8_t info, spec::LogPageId log_page) {
  uint32_t type_bit = 1u << spec::raw(type);
  // An event type stays masked until the host reads its log page.
  if (masked_event_types_ & type_bit) return;
  // Async Event Configuration bit 8: namespace attribute notices.
  if (type == spec::AsyncEventType::NOTICE && (async_event_config_ & 0x100) == 0) return;
  masked_event_types_ |= type_bit;
  pending_events_.push_back(spec::aer::TYPE.put(spec::raw(type)) | spec::aer::INFO.put(info) |
                            spec::aer::LOG_PAGE.put(spec::raw(log_page)));
}

// Spec: a doorbell write of an out-of-range value is ignored and reported as
// an asynchronous error event "Invalid Doorbell Write Value" (info 01h).
void Controller::PostInvalidDoorbellEvent() {
  stats_.invalid_doorbell_writes++;
  PostAsyncEvent(spec::AsyncEventType::ERROR, 0x01, spec::LogPageId::ERROR);
}

void Controller::DeliverAsyncEvents() {
  while (!pending_events_.empty() && !aer_cids_.empty() && CompletionSpace(0) > 0) {
    Completion completion;
    completion.dw0 = pending_events_.front();
    pending_events_.pop_front();
    uint16_t cid = aer_cids_.front();
    aer_cids_.pop_front();
    PostCompletion(0, cid, completion, 0);
  }
}

void Controller::RefreshNamespaces() {
  uint64_t epoch = subsystem_->namespace_epoch();
  if (epoch == namespace_epoch_) return;
  bool first_view = namespace_epoch_ == UINT64_MAX;
  namespace_epoch_ = epoch;
  std::vector<NamespaceView> views;
  for (const NamespaceInfo& info : subsystem_->store().Namespaces()) {
    if (std::find(info.attached_controllers.begin(), info.attached_controllers.end(), cntlid_) ==
        info.attached_controllers.end())
      continue;
    uint8_t shift = info.block_bytes == 4096 ? 12 : 9;
    views.push_back(NamespaceView{info.nsid, info.size_blocks, info.block_bytes, shift});
  }
  // Every namespace that appeared, vanished or changed size goes into the
  // Changed Namespace List and raises one notice (not on the first look).
  auto same = [](const NamespaceView& a, const NamespaceView& b) {
    return a.nsid == b.nsid && a.size_blocks == b.size_blocks && a.block_bytes == b.block_bytes;
  };
  auto note = [this, first_view](uint32_t nsid) {
    if (first_view) return;
    if (std::find(changed_namespaces_.begin(), changed_namespaces_.end(), nsid) == changed_namespaces_.end())
      changed_namespaces_.push_back(nsid);
  };
  bool changed = false;
  for (const NamespaceView& now : views) {
    const NamespaceView* before = FindNamespace(now.nsid);
    if (before == nullptr || !same(*before, now)) changed = true, note(now.nsid);
  }
  for (const NamespaceView& before : namespaces_) {
    bool still = std::any_of(views.begin(), views.end(), [&](const NamespaceView& v) { return v.nsid == before.nsid; });
    if (!still) changed = true, note(before.nsid);
  }
  namespaces_ = std::move(views);
  if (changed && !first_view)
    PostAsyncEvent(spec::AsyncEventType::NOTICE, spec::raw(spec::AsyncEventNotice::NAMESPACE_ATTRIBUTE_CHANGED),
                   spec::LogPageId::CHANGED_NS_LIST);
  // Limits may have changed with the same epoch bump.
  uint64_t iops = 0, bytes_per_second = 0;
  for (const ControllerLimits& limits : subsystem_->store().Limits()) {
    if (limits.cntlid != cntlid_) continue;
    iops = limits.iops;
    bytes_per_second = limits.bytes_per_second;
  }
  iops_bucket_.Configure(iops, 1);
  bytes_bucket_.Configure(bytes_per_second, kMaxTransferBytes);
}

const NamespaceView* Controller::FindNamespace(uint32_t nsid) const {
  for (const NamespaceView& view : namespaces_)
    if (view.nsid == nsid) return &view;
  return nullptr;
}

bool Controller::HasPendingWork() {
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return true;
  if (ReadRegister32(kRegCc) != last_cc_) return true;
  if (!enabled_ || fatal_ || shut_down_) return false;
  for (uint16_t qid = 0; qid <= kMaxQueueId; qid++) {
    const SubmissionQueue& sq = sqs_[qid];
    if (sq.exists && ReadRegister32(kDoorbellBase + 8 * qid) != sq.head) return true;
  }
  return !pending_events_.empty() && !aer_cids_.empty();
}

Status Controller::MapData(const spec::Sqe& sqe, uint64_t length_bytes, bool admin, Transfer* transfer) {
  switch (static_cast<spec::Psdt>(spec::sqe::PSDT.get(sqe.flags))) {
    case spec::Psdt::PRP:
      return MapPrp(regions_, sqe.dptr.prp.prp1, sqe.dptr.prp.prp2, length_bytes, transfer);
    case spec::Psdt::SGL_MPTR_CONTIGUOUS:
    case spec::Psdt::SGL_MPTR_SGL:
      // Admin commands on PCIe use PRPs only.
      if (admin) return status::kInvalidField;
      return MapSgl(regions_, reinterpret_cast<const uint8_t*>(&sqe.dptr.sgl1), length_bytes, transfer);
    default:
      return status::kInvalidField;
  }
}

void Controller::Execute(const Command& command) {
  const auto& sqe = *reinterpret_cast<const spec::Sqe*>(command.bytes);
  stats_.commands++;
  Completion completion = command.sqid == 0 ? AdminCommands::Run(*this, command) : IoCommands::Run(*this, command);
  if (completion.deferred) return;
  if (completion.status != status::kSuccess) RecordError(command.sqid, sqe.cid, completion, sqe.nsid);
  // A Delete I/O SQ for this very queue cannot happen (admin commands run on
  // queue 0), so the SQ still names its CQ here.
  PostCompletion(command.sqid, sqe.cid, completion, sqs_[command.sqid].cqid);
}

uint32_t Controller::PollQueue(uint16_t sqid, std::chrono::steady_clock::time_point now, bool* throttled) {
  SubmissionQueue& sq = sqs_[sqid];
  uint32_t tail = ReadRegister32(kDoorbellBase + 8 * sqid);
  if (tail == sq.head) return 0;
  if (tail >= sq.entries) {
    // Spec: an invalid doorbell value is ignored and reported through an
    // asynchronous error event (once per distinct bad value).
    if (tail != sq.bad_tail) {
      sq.bad_tail = tail;
      PostInvalidDoorbellEvent();
    }
    return 0;
  }
  uint32_t executed = 0;
  while (sq.head != tail && executed < kArbitrationBurst) {
    if (CompletionSpace(sq.cqid) == 0) break;  // the host must make room first
    if (sqid != 0 && (!iops_bucket_.Ready(now) || !bytes_bucket_.Ready(now))) {
      *throttled = true;
      break;
    }
    Command command;
    // Copy the entry out first: the host may rewrite it while we work, and
    // every check must see the same bytes as the execution.
    memcpy(command.bytes, sq.base + size_t{sq.head} * 64, 64);
    command.sqid = sqid;
    sq.head = sq.head + 1 == sq.entries ? 0 : sq.head + 1;
    Execute(command);
    executed++;
    if (!enabled_ || !sqs_[sqid].exists) break;  // the command reset or deleted this queue
  }
  return executed;
}

uint32_t Controller::Poll(std::chrono::steady_clock::time_point now,
                          std::chrono::steady_clock::time_point* next_deadline) {
  std::unique_lock<std::mutex> lock(mutex_, std::try_to_lock);
  if (!lock.owns_lock()) return 1;  // the host side is reconfiguring us: come back soon
  // An injected fatal error or a simulated power cut (the store refuses all
  // I/O from then on): report it the way hardware does, through CSTS.CFS.
  if (!fatal_ && enabled_ &&
      (fatal_requested_.exchange(false, std::memory_order_acq_rel) || subsystem_->store().power_lost())) {
    SetFatal();
  }
  uint32_t cc = ReadRegister32(kRegCc);
  uint32_t work = 0;
  if (cc != last_cc_) {
    HandleControllerConfiguration(cc);
    work++;
  }
  if (!enabled_ || fatal_ || shut_down_) return work;
  RefreshNamespaces();
  bool throttled = false;
  work += PollQueue(0, now, &throttled);
  for (uint16_t qid = 1; qid <= kMaxQueueId && enabled_; qid++)
    if (sqs_[qid].exists) work += PollQueue(qid, now, &throttled);
  DeliverAsyncEvents();
  if (throttled) {
    stats_.throttled_rounds++;
    auto ready = std::max(iops_bucket_.ReadyAt(), bytes_bucket_.ReadyAt());
    if (ready < *next_deadline) *next_deadline = ready;
  }
  // Interrupts: coalescing (Set Features 08h) holds them until THR + 1
  // completions are pending or TIME has passed; the admin CQ is never held.
  for (uint16_t qid = 0; qid <= kMaxQueueId; qid++) {
    CompletionQueue& cq = cqs_[qid];
    if (!cq.exists || cq.unsignalled == 0) continue;
    bool coalesce = qid != 0 && (coalescing_threshold_ != 0 || coalescing_time_100us_ != 0) &&
                    !(cq.vector < 32 && (vector_coalescing_disabled_ >> cq.vector) & 1);
    if (!coalesce || cq.unsignalled > coalescing_threshold_ ||
        now - cq.first_unsignalled >= std::chrono::microseconds(100 * coalescing_time_100us_)) {
      SignalInterrupt(cq);
    } else {
      auto due = cq.first_unsignalled + std::chrono::microseconds(100 * coalescing_time_100us_);
      if (due < *next_deadline) *next_deadline = due;
    }
  }
  stats_.busy_ns += work > 0 ? static_cast<uint64_t>(
                                   std::chrono::duration_cast<std::chrono::nanoseconds>(
                                       std::chrono::steady_clock::now() - now).count())
                             : 0;
  return work;
}

ControllerStats Controller::stats() {
  std::lock_guard<std::mutex> lock(mutex_);
  return stats_;
}

std::vector<std::pair<uint16_t, uint64_t>> Controller::rejections() {
  std::lock_guard<std::mutex> lock(mutex_);
  return {rejections_.begin(), rejections_.end()};
}

}  // namespace offpath::emu
