// libFuzzer target: the emulator's command path, driven by a hostile host.
//
// Every input runs on a fresh, in-process subsystem whose poller threads are
// never started (SubsystemConfig::start_pollers = false): the harness calls
// Controller::Poll itself, so a run is single-threaded and reproducible.
//
// Setup (fixed, before the input is read):
//   - a memory store with three namespaces: A (512 B blocks) and B (4 KiB)
//     attached to VF 1, and SECRET (4 KiB) attached to VF 2 and filled with a
//     pattern carrying a per-process random 8-byte marker every 64 bytes;
//   - VF 1 online (9 VQ, 5 VI), with three DMA regions: R1 (rings + data),
//     R2 (IOVA-adjacent to R1, a different host mapping) and R3 (at the top of
//     the 64-bit IOVA space); interrupt eventfds for its vectors;
//   - VF 2 online but never enabled, with a canary-filled region at the same
//     IOVA as VF 1's R1;
//   - VF 1 enabled through its BAR (AQA/ASQ/ACQ, CC), Set Features (Number of
//     Queues), two I/O queue pairs.
//
// The input is then a program (see Op below): SQEs with hostile fields (with
// optional relocation of data pointers into the regions, so the fuzzer need
// not guess IOVAs), DMA memory contents (PRP lists, SGL segments, anything),
// raw doorbell and register writes, CC enable/disable/shutdown, and the
// control plane's moves on the side (VF offline/online, read-only, QoS
// limits, resize, detach/attach, host detach, unmap/remap). After every step
// the harness polls until the controllers are idle (bounded: a controller
// that never goes idle is a hang) and consumes completions as a conforming
// host would.
//
// What fails a run (abort() -> libFuzzer saves the input):
//   - any sanitizer report (ASan, UBSan), or a fault on a guard page: every
//     mapping the emulator makes (DMA regions, BARs, the memory store) gets a
//     PROT_NONE page on each side (-Wl,--wrap=mmap, below);
//   - VF 2's canary region, VF 2's and the PF's BARs, or the SECRET
//     namespace (data, size, attachments) changed;
//   - the SECRET marker shows up anywhere in VF 1's memory;
//   - no idle state within kMaxPollRounds (a hang; libFuzzer's -timeout
//     catches loops inside one command);
//   - a completion queue overrun: more new entries than a queue of N entries
//     may hold (N - 1), checked while the host has behaved (no raw doorbell
//     or register writes, no direct writes to ring memory, every completion
//     seen so far well formed);
//   - after the harness resets and re-enables the controller as a driver
//     does: completions before anything was submitted (stale admin SQ tail)
//     or a first admin command that never completes (stale admin CQ head).
// OFFPATH_FUZZ_IGNORE=id,... turns the checks of reported findings off
// (fuzz/known-findings); OFFPATH_FUZZ_TRACE=1 prints every op and completion.
//
// Seeds: OFFPATH_FUZZ_WRITE_SEEDS=DIR ./emulator_commands_fuzz writes the
// seed programs (fuzz/corpus/emulator_commands/) and exits.
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "bar_layout.h"
#include "controller.h"
#include "offpath/nvme_spec.h"
#include "store.h"
#include "subsystem.h"

namespace spec = offpath::nvme;
using namespace offpath::emu;
using Clock = std::chrono::steady_clock;

// ---------------------------------------------------------------------------
// Guard pages around every mapping the emulator makes. The linker routes the
// emulator's mmap/munmap calls here (-Wl,--wrap=mmap,--wrap=munmap): each
// mapping gets a PROT_NONE page below and above, so reading or writing past
// a DMA region, a BAR or the store faults at once.

extern "C" void* __real_mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset);
extern "C" int __real_munmap(void* addr, size_t length);

namespace {
constexpr size_t kGuardBytes = 4096;
std::mutex guard_mutex;
std::map<uintptr_t, size_t>* guarded = nullptr;  // start -> rounded length (leaked on purpose)

size_t RoundUp(size_t length) { return (length + kGuardBytes - 1) / kGuardBytes * kGuardBytes; }
}  // namespace

extern "C" void* __wrap_mmap(void* addr, size_t length, int prot, int flags, int fd, off_t offset) {
  if (addr != nullptr || (flags & MAP_FIXED) != 0 || length == 0) return __real_mmap(addr, length, prot, flags, fd, offset);
  size_t rounded = RoundUp(length);
  auto* reserve = static_cast<uint8_t*>(
      __real_mmap(nullptr, rounded + 2 * kGuardBytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0));
  if (reserve == MAP_FAILED) return MAP_FAILED;
  void* inner = __real_mmap(reserve + kGuardBytes, length, prot, flags | MAP_FIXED, fd, offset);
  if (inner == MAP_FAILED) {
    int saved = errno;
    __real_munmap(reserve, rounded + 2 * kGuardBytes);
    errno = saved;
    return MAP_FAILED;
  }
  std::lock_guard<std::mutex> lock(guard_mutex);
  if (guarded == nullptr) guarded = new std::map<uintptr_t, size_t>();
  (*guarded)[reinterpret_cast<uintptr_t>(inner)] = rounded;
  return inner;
}

extern "C" int __wrap_munmap(void* addr, size_t length) {
  {
    std::lock_guard<std::mutex> lock(guard_mutex);
    if (guarded != nullptr) {
      auto it = guarded->find(reinterpret_cast<uintptr_t>(addr));
      if (it != guarded->end() && RoundUp(length) == it->second) {
        size_t rounded = it->second;
        guarded->erase(it);
        return __real_munmap(static_cast<uint8_t*>(addr) - kGuardBytes, rounded + 2 * kGuardBytes);
      }
    }
  }
  return __real_munmap(addr, length);
}

namespace {

// ---------------------------------------------------------------------------
// Findings

[[noreturn]] void Finding(const char* format, ...) {
  va_list args;
  va_start(args, format);
  fprintf(stderr, "\n==offpath-fuzz== FINDING: ");
  vfprintf(stderr, format, args);
  fprintf(stderr, "\n");
  va_end(args);
  abort();
}

// OFFPATH_FUZZ_IGNORE=id,id: keep fuzzing past findings already reported
// (ids: stale-admin-sq, stale-admin-cq, cq-overrun).
bool Ignored(const char* id) {
  static const char* ignore = getenv("OFFPATH_FUZZ_IGNORE");
  if (ignore == nullptr) return false;
  std::string list = std::string(",") + ignore + ",";
  return list.find(std::string(",") + id + ",") != std::string::npos;
}

[[noreturn]] void SetupFailed(const char* what) {
  fprintf(stderr, "==offpath-fuzz== harness setup failed: %s\n", what);
  abort();
}

// ---------------------------------------------------------------------------
// Layout

constexpr uint64_t kR1Iova = 0x100000;
constexpr uint64_t kR1Bytes = 512 * 1024;
constexpr uint64_t kR2Iova = kR1Iova + kR1Bytes;  // IOVA-contiguous with R1, another mapping
constexpr uint64_t kR2Bytes = 64 * 1024;
constexpr uint64_t kR3Iova = 0xfffffffffffe0000ull;  // ends 64 KiB below 2^64
constexpr uint64_t kR3Bytes = 64 * 1024;
constexpr uint64_t kCanaryIova = kR1Iova;  // VF 2's region: the same IOVA as VF 1's R1
constexpr uint64_t kCanaryBytes = 64 * 1024;
// Inside R1: rings in the first 32 KiB, data after.
constexpr uint64_t kAdminSqOffset = 0x0000;
constexpr uint64_t kAdminCqOffset = 0x1000;
constexpr uint64_t kIoSqOffset[2] = {0x2000, 0x4000};  // up to 128 entries each (8 KiB)
constexpr uint64_t kIoCqOffset[2] = {0x6000, 0x7000};  // up to 256 entries each
constexpr uint64_t kRingBytes = 0x8000;
constexpr uint64_t kDataOffset = kRingBytes;
constexpr uint64_t kDataBytes = kR1Bytes - kDataOffset;
constexpr uint64_t kUnmappedIova = 0x40000000;  // inside no region of VF 1

constexpr uint64_t kStoreBytes = 8 << 20;
constexpr uint32_t kChunkBytes = 64 * 1024;
constexpr uint64_t kNsABlocks = 2048;  // 512 B: 1 MiB
constexpr uint64_t kNsBBlocks = 256;   // 4 KiB: 1 MiB
constexpr uint64_t kSecretBlocks = 64;  // 4 KiB: 256 KiB
constexpr uint32_t kSecretUnitBytes = 64;  // one marker per 64 bytes

constexpr uint32_t kMaxPollRounds = 200000;
constexpr uint32_t kMaxThrottleWaits = 256;
constexpr size_t kMaxOps = 384;

uint64_t secret_marker = 0;  // random per process: never in a seed, never learnt
bool trace = false;          // OFFPATH_FUZZ_TRACE=1: print ops and completions (replaying a reproducer)

void Trace(const char* format, ...) {
  if (!trace) return;
  va_list args;
  va_start(args, format);
  vfprintf(stderr, format, args);
  va_end(args);
}

uint64_t Mix(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  x ^= x >> 33;
  return x;
}

// SECRET's contents: every 64-byte unit starts with the marker, then bytes
// derived from it (so a partial leak of >= 72 bytes always holds one marker).
void FillSecret(std::vector<uint8_t>* bytes) {
  bytes->resize(kSecretBlocks * 4096);
  for (size_t unit = 0; unit < bytes->size() / kSecretUnitBytes; unit++) {
    uint8_t* at = bytes->data() + unit * kSecretUnitBytes;
    memcpy(at, &secret_marker, 8);
    for (size_t i = 8; i < kSecretUnitBytes; i += 8) {
      uint64_t word = Mix(secret_marker ^ (unit * 8 + i));
      memcpy(at + i, &word, 8);
    }
  }
}

// Kept out of coverage instrumentation on purpose: comparisons against the
// marker must not teach libFuzzer the marker (it would then write it into
// DMA memory itself).
__attribute__((no_sanitize("coverage"), noinline)) bool ContainsMarker(const uint8_t* bytes, size_t length) {
  if (length < 8) return false;
  const uint8_t first = static_cast<uint8_t>(secret_marker);
  const uint8_t* end = bytes + length - 7;
  for (const uint8_t* at = bytes; at < end;) {
    const void* hit = memchr(at, first, static_cast<size_t>(end - at));
    if (hit == nullptr) return false;
    at = static_cast<const uint8_t*>(hit);
    uint64_t word;
    memcpy(&word, at, 8);
    if (word == secret_marker) return true;
    at++;
  }
  return false;
}

// ---------------------------------------------------------------------------
// Input reader: forward, zero-filled when the input runs out.

class Reader {
 public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return at_ >= size_; }
  uint8_t U8() { return at_ < size_ ? data_[at_++] : 0; }
  uint16_t U16() { return static_cast<uint16_t>(U8() | (U8() << 8)); }
  uint32_t U32() { return U16() | (uint32_t{U16()} << 16); }
  uint64_t U64() { return U32() | (uint64_t{U32()} << 32); }
  void Bytes(void* out, size_t length) {
    auto* bytes = static_cast<uint8_t*>(out);
    for (size_t i = 0; i < length; i++) bytes[i] = U8();
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t at_ = 0;
};

// ---------------------------------------------------------------------------
// Host memory (memfds the harness owns and maps itself).

struct HostRegion {
  const char* name;
  uint64_t iova;
  uint64_t bytes;
  int fd = -1;
  uint8_t* host = nullptr;
  bool registered = false;

  bool Create() {
    fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, static_cast<off_t>(bytes)) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0)
      return false;
    void* mapped = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (mapped == MAP_FAILED) return false;
    host = static_cast<uint8_t*>(mapped);
    return true;
  }
  bool Contains(uint64_t address, uint64_t length) const {
    return address >= iova && length <= bytes && address - iova <= bytes - length;
  }
};

// ---------------------------------------------------------------------------
// The host's model of its queues (a conforming driver's bookkeeping).

struct HostSq {
  bool exists = false;
  uint32_t entries = 0;
  uint64_t iova = 0;
  uint32_t tail = 0;
  uint32_t head = 0;  // from completions' SQ Head Pointer
  uint16_t cqid = 0;
};

struct HostCq {
  bool exists = false;
  uint32_t entries = 0;
  uint64_t iova = 0;
  uint32_t head = 0;
  uint8_t phase = 1;
};

struct Pending {
  uint16_t cid;
  alignas(8) uint8_t sqe[64];
};

// Admin opcodes and NVM opcodes the relocation fix-ups pick from.
constexpr uint8_t kAdminOpcodes[] = {0x00, 0x01, 0x02, 0x04, 0x05, 0x06, 0x08, 0x09, 0x0a, 0x0c,
                                     0x0d, 0x15, 0x1c, 0x18, 0x10, 0x80, 0xc0, 0xc1, 0xc2, 0xc3};
constexpr uint8_t kIoOpcodes[] = {0x00, 0x01, 0x02, 0x05, 0x08, 0x09, 0x04, 0x0c, 0x0d, 0x81};

enum Op : uint8_t {
  kOpAdminSqe,
  kOpIoSqe,
  kOpDmaWrite,
  kOpPrpList,
  kOpSglSegment,
  kOpDoorbell,
  kOpCc,
  kOpRegister,
  kOpReenable,
  kOpConsume,
  kOpTime,
  kOpControl,
  kOpBatch,
  kOpCount,
};

// Sets CC for a valid enable: NVM command set, 4 KiB pages, 64/16-byte entries.
constexpr uint32_t kCcEnable = spec::cc::EN.put(1) | spec::cc::IOSQES.put(6) | spec::cc::IOCQES.put(4);
constexpr uint32_t kRegCc = 0x14;
constexpr uint32_t kRegCsts = 0x1c;
constexpr uint32_t kRegAqa = 0x24;
constexpr uint32_t kRegAsq = 0x28;
constexpr uint32_t kRegAcq = 0x30;

struct Shared {
  HostRegion r1{"fuzz-r1", kR1Iova, kR1Bytes};
  HostRegion r2{"fuzz-r2", kR2Iova, kR2Bytes};
  HostRegion r3{"fuzz-r3", kR3Iova, kR3Bytes};
  HostRegion canary{"fuzz-canary", kCanaryIova, kCanaryBytes};
  std::vector<uint8_t> canary_pattern;
  std::vector<uint8_t> secret;
  std::vector<uint8_t> some;  // what A and B hold at the start
  bool made = false;

  void Make() {
    if (made) return;
    made = true;
    for (HostRegion* r : {&r1, &r2, &r3, &canary})
      if (!r->Create()) SetupFailed("memfd");
    canary_pattern.resize(kCanaryBytes);
    for (size_t i = 0; i < canary_pattern.size(); i += 8) {
      uint64_t word = Mix(0xca4a7e5ull ^ i);
      memcpy(&canary_pattern[i], &word, 8);
    }
    FillSecret(&secret);
    some.resize(64 * 1024);
    for (size_t i = 0; i < some.size(); i++) some[i] = static_cast<uint8_t>(i * 7 + 1);
  }
  void Reset() {
    for (HostRegion* r : {&r1, &r2, &r3}) memset(r->host, 0, r->bytes);
    memcpy(canary.host, canary_pattern.data(), kCanaryBytes);
  }
};
Shared shared;

class Harness {
 public:
  explicit Harness(Reader* in) : in_(in) {}
  ~Harness() { Teardown(); }

  void Run();

 private:
  // --- setup / teardown ---------------------------------------------------
  void Setup();
  void Teardown();
  void MapRegions();
  void BringUp();
  bool EnableController();
  void CreateIoQueues();

  // --- BAR ---------------------------------------------------------------
  uint32_t Bar32(uint32_t offset) const { return __atomic_load_n(reinterpret_cast<uint32_t*>(bar_ + offset), __ATOMIC_ACQUIRE); }
  void SetBar32(uint32_t offset, uint32_t value) { __atomic_store_n(reinterpret_cast<uint32_t*>(bar_ + offset), value, __ATOMIC_SEQ_CST); }
  void SetBar64(uint32_t offset, uint64_t value) {
    SetBar32(offset, static_cast<uint32_t>(value));
    SetBar32(offset + 4, static_cast<uint32_t>(value >> 32));
  }
  bool Ready() const { return spec::csts::RDY.get(Bar32(kRegCsts)) != 0; }

  // --- memory ------------------------------------------------------------
  uint8_t* Host(uint64_t iova, uint64_t length) {
    for (HostRegion* r : {&r1_, &r2_, &r3_})
      if (r->Contains(iova, length)) return r->host + (iova - r->iova);
    return nullptr;
  }
  uint64_t Address();
  void NoteHostWrite(uint64_t iova, uint64_t length);

  // --- running -----------------------------------------------------------
  void RunUntilIdle();
  void Consume();
  void ConsumeCq(uint16_t cqid);
  void AfterStateChange(bool was_ready);
  bool Submit(uint16_t sqid, const uint8_t sqe[64], bool ring);
  void Ring(uint16_t sqid);
  void Learn(const Pending& command, uint16_t status);

  // --- ops ---------------------------------------------------------------
  void OpAdminSqe();
  void ReadIoSqe(uint8_t sqe[64], uint16_t* sqid);
  void OpIoSqe();
  void OpDmaWrite();
  void OpPrpList();
  void OpSglSegment();
  void OpDoorbell();
  void OpCc();
  void OpRegister();
  void OpTime();
  void OpControl();
  void OpBatch();

  // --- checks ------------------------------------------------------------
  void Check(const char* after);

  Reader* in_;
  std::unique_ptr<Subsystem> subsystem_;
  Controller* vf1_ = nullptr;
  Controller* vf2_ = nullptr;
  uint8_t* bar_ = nullptr;       // VF 1's BAR, our mapping
  uint8_t* bar2_ = nullptr;      // VF 2's BAR
  uint8_t* pf_bar_ = nullptr;    // the PF's BAR
  std::vector<uint8_t> bar2_initial_, pf_bar_initial_;
  // Host memory and patterns outlive one input (made once, cleared per input).
  HostRegion& r1_ = shared.r1;
  HostRegion& r2_ = shared.r2;
  HostRegion& r3_ = shared.r3;
  HostRegion& canary_ = shared.canary;
  const std::vector<uint8_t>& canary_pattern_ = shared.canary_pattern;
  const std::vector<uint8_t>& secret_ = shared.secret;
  uint32_t ns_a_ = 0, ns_b_ = 0, ns_secret_ = 0;
  Clock::time_point now_;

  // Configuration from the input's first bytes.
  uint32_t admin_sq_entries_ = 0;
  uint32_t admin_cq_entries_ = 0;
  uint32_t io_sq_entries_ = 0;
  uint32_t io_cq_entries_ = 0;
  bool io_interrupts_ = false;

  HostSq sqs_[kMaxQueueId + 1];
  HostCq cqs_[kMaxQueueId + 1];
  std::deque<Pending> pending_[kMaxQueueId + 1];
  // False once the host stops behaving like a driver (raw doorbells or
  // registers, writes to ring memory, a malformed completion): the overrun
  // check needs the host's bookkeeping to be exact.
  bool strict_ = true;
  uint32_t next_cid_ = 0x8000;
  bool stale_admin_sq_ = false;  // the last enable ran stale admin SQ slots
  bool read_only_ = false;
};

// ---------------------------------------------------------------------------

void Harness::Setup() {
  SubsystemConfig config;
  config.store.kind = BackendKind::kMemory;
  config.store.size_bytes = kStoreBytes;
  config.store.chunk_bytes = kChunkBytes;
  config.secondary_controllers = 2;
  config.pollers = 1;
  config.start_pollers = false;
  std::string error;
  subsystem_ = Subsystem::Create(config, &error);
  if (!subsystem_) SetupFailed(error.c_str());
  Store& store = subsystem_->store();
  if (store.CreateNamespace(kNsABlocks, 512, &ns_a_) != 0 || store.CreateNamespace(kSecretBlocks, 4096, &ns_secret_) != 0 ||
      store.CreateNamespace(kNsBBlocks, 4096, &ns_b_) != 0)
    SetupFailed("CreateNamespace");
  if (store.Attach(ns_a_, 1) != 0 || store.Attach(ns_b_, 1) != 0 || store.Attach(ns_secret_, 2) != 0) SetupFailed("Attach");
  shared.Make();
  shared.Reset();
  Segment segment{const_cast<uint8_t*>(secret_.data()), secret_.size()};
  if (store.Write(ns_secret_, 0, kSecretBlocks, &segment, 1, false) != 0) SetupFailed("Write SECRET");
  // A little data in A and B too, so reads return something.
  Segment a{shared.some.data(), shared.some.size()};
  if (store.Write(ns_a_, 0, 128, &a, 1, false) != 0 || store.Write(ns_b_, 0, 16, &a, 1, false) != 0) SetupFailed("Write A/B");
  subsystem_->NamespacesChanged();

  vf1_ = subsystem_->controller(1);
  vf2_ = subsystem_->controller(2);
  vf1_->SetAssigned(9, 5);
  vf1_->SetOnline(true);
  vf2_->SetAssigned(2, 1);
  vf2_->SetOnline(true);
  for (uint16_t vector = 0; vector < 5; vector++) {
    int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (fd < 0 || !vf1_->SetInterruptFd(vector, fd, &error).empty()) SetupFailed("SetInterruptFd");
  }

  auto map_bar = [](Controller* controller) {
    void* bar = mmap(nullptr, kBarBytes, PROT_READ | PROT_WRITE, MAP_SHARED, controller->bar_fd(), 0);
    if (bar == MAP_FAILED) SetupFailed("mmap BAR");
    return static_cast<uint8_t*>(bar);
  };
  bar_ = map_bar(vf1_);
  bar2_ = map_bar(vf2_);
  pf_bar_ = map_bar(subsystem_->controller(0));

  if (!vf2_->MapDma(canary_.iova, canary_.bytes, canary_.fd, &error).empty()) SetupFailed("MapDma canary");
  MapRegions();
  bar2_initial_.assign(bar2_, bar2_ + kBarBytes);
  pf_bar_initial_.assign(pf_bar_, pf_bar_ + kBarBytes);
  now_ = Clock::now();
}

void Harness::MapRegions() {
  std::string error;
  for (HostRegion* r : {&r1_, &r2_, &r3_}) {
    std::string code = vf1_->MapDma(r->iova, r->bytes, r->fd, &error);
    r->registered = code.empty() || code == "EEXIST";
  }
}

void Harness::Teardown() {
  subsystem_.reset();  // controllers unmap their views and close interrupt fds
  for (uint8_t* bar : {bar_, bar2_, pf_bar_})
    if (bar != nullptr) munmap(bar, kBarBytes);
  bar_ = bar2_ = pf_bar_ = nullptr;
}

bool Harness::EnableController() {
  bool was_ready = Ready();
  if (spec::cc::EN.get(Bar32(kRegCc))) {
    SetBar32(kRegCc, 0);
    RunUntilIdle();
  }
  AfterStateChange(was_ready);
  memset(r1_.host, 0, kRingBytes);
  SetBar32(kRegAqa, spec::aqa::ASQS.put(admin_sq_entries_ - 1) | spec::aqa::ACQS.put(admin_cq_entries_ - 1));
  SetBar64(kRegAsq, r1_.iova + kAdminSqOffset);
  SetBar64(kRegAcq, r1_.iova + kAdminCqOffset);
  SetBar32(kRegCc, kCcEnable);
  RunUntilIdle();
  AfterStateChange(false);
  if (!Ready()) return false;
  // The host has not submitted anything yet and zeroed the rings: a
  // completion now means the controller ran commands nobody submitted.
  uint32_t posted = 0;
  for (uint32_t slot = 0; slot < admin_cq_entries_; slot++) {
    uint16_t status;
    memcpy(&status, r1_.host + kAdminCqOffset + slot * 16 + 14, 2);
    posted += status & 1;
  }
  stale_admin_sq_ = posted > 0;
  if (posted > 0 && !Ignored("stale-admin-sq"))
    Finding("[stale-admin-sq] right after a reset and re-enable, before the host submitted anything, the controller posted %u "
            "completions to the fresh admin CQ: it executed admin SQ slots from the previous enable's tail doorbell",
            posted);
  return true;
}

void Harness::CreateIoQueues() {
  if (!Ready()) return;
  auto admin = [this](uint8_t opcode, uint32_t cdw10, uint32_t cdw11, uint64_t prp1) {
    spec::Sqe sqe{};
    sqe.opc = opcode;
    sqe.cdw10 = cdw10;
    sqe.cdw11 = cdw11;
    sqe.dptr.prp.prp1 = prp1;
    Submit(0, reinterpret_cast<const uint8_t*>(&sqe), true);
  };
  admin(0x09, 0x07, (1u << 16) | 1u, 0);  // Number of Queues: 2 SQ, 2 CQ
  // A driver's first command after enable must complete (the admin CQ is
  // empty, so the controller has room).
  if (!pending_[0].empty() && !stale_admin_sq_ && !Ignored("stale-admin-cq"))
    Finding("[stale-admin-cq] the first admin command after enable never completed although the admin CQ is empty "
            "(CQ 0 head doorbell still holds %u from before the reset)",
            Bar32(spec::cqHeadDoorbellOffset(0, 0)));
  pending_[0].clear();
  for (uint16_t q = 1; q <= 2; q++) {
    bool interrupts = io_interrupts_ && q == 1;
    admin(0x05, (uint32_t{io_cq_entries_ - 1} << 16) | q, 1u | (interrupts ? 2u : 0u) | (uint32_t{q} << 16),
          r1_.iova + kIoCqOffset[q - 1]);
    admin(0x01, (uint32_t{io_sq_entries_ - 1} << 16) | q, 1u | (uint32_t{q} << 16), r1_.iova + kIoSqOffset[q - 1]);
  }
}

void Harness::BringUp() {
  if (!EnableController()) SetupFailed("controller did not become ready");
  CreateIoQueues();
  if (!sqs_[1].exists || !sqs_[2].exists) SetupFailed("I/O queues were not created");
}

// ---------------------------------------------------------------------------
// Polling and the host's completion handling

void Harness::RunUntilIdle() {
  uint32_t throttle_waits = 0;
  for (uint32_t round = 0; round < kMaxPollRounds; round++) {
    auto deadline = Clock::time_point::max();
    uint32_t work = vf1_->Poll(now_, &deadline);
    work += vf2_->Poll(now_, &deadline);
    now_ += std::chrono::microseconds(5);
    if (work != 0) continue;
    // Idle, unless a throttled queue or a coalescing timer is waiting for a
    // later time: jump there (bounded: a bucket that never refills would
    // otherwise look like a hang).
    if (deadline != Clock::time_point::max() && throttle_waits++ < kMaxThrottleWaits) {
      if (deadline > now_) now_ = deadline;
      now_ += std::chrono::microseconds(1);
      continue;
    }
    return;
  }
  Finding("hang: VF 1 still had work after %u poll rounds", kMaxPollRounds);
}

void Harness::Learn(const Pending& command, uint16_t status) {
  // A successful queue creation or deletion the fuzzer asked for: track it
  // like a driver would.
  const auto& sqe = *reinterpret_cast<const spec::Sqe*>(command.sqe);
  if ((status >> 1) != 0) return;
  uint16_t qid = static_cast<uint16_t>(sqe.cdw10 & 0xffff);
  if (qid == 0 || qid > kMaxQueueId) return;
  switch (sqe.opc) {
    case 0x05:  // Create I/O CQ
      cqs_[qid] = HostCq{true, (sqe.cdw10 >> 16) + 1, sqe.dptr.prp.prp1, 0, 1};
      break;
    case 0x01:  // Create I/O SQ
      sqs_[qid] = HostSq{true, (sqe.cdw10 >> 16) + 1, sqe.dptr.prp.prp1, 0, 0, static_cast<uint16_t>(sqe.cdw11 >> 16)};
      pending_[qid].clear();
      break;
    case 0x00:  // Delete I/O SQ
      sqs_[qid] = HostSq{};
      pending_[qid].clear();
      break;
    case 0x04:  // Delete I/O CQ
      cqs_[qid] = HostCq{};
      break;
    default:
      break;
  }
}

void Harness::ConsumeCq(uint16_t cqid) {
  HostCq& cq = cqs_[cqid];
  if (!cq.exists) return;
  uint8_t* ring = Host(cq.iova, uint64_t{cq.entries} * 16);
  if (ring == nullptr) return;
  uint32_t fresh = 0;
  for (;;) {
    spec::Cqe cqe;
    memcpy(&cqe, ring + size_t{cq.head} * 16, 16);
    if ((cqe.status & 1) != cq.phase) break;
    if (++fresh > cq.entries) break;  // every slot looked new: garbage, stop
    if (fresh == cq.entries && strict_ && !Ignored("cq-overrun"))
      Finding("[cq-overrun] completion queue overrun: CQ %u (%u entries) holds %u new completions at once; a controller may post at most %u "
              "before the host moves the head (last: sqid %u cid 0x%04x status 0x%04x)",
              cqid, cq.entries, fresh, cq.entries - 1, cqe.sqid, cqe.cid, cqe.status);
    // A well-formed completion names an SQ of this CQ and a command it holds.
    bool valid = cqe.sqid <= kMaxQueueId && sqs_[cqe.sqid].exists && sqs_[cqe.sqid].cqid == cqid &&
                 cqe.sqhd < sqs_[cqe.sqid].entries;
    if (valid) {
      auto& pending = pending_[cqe.sqid];
      auto it = std::find_if(pending.begin(), pending.end(), [&](const Pending& p) { return p.cid == cqe.cid; });
      if (it == pending.end()) {
        valid = false;
      } else {
        Pending command = *it;
        pending.erase(it);
        sqs_[cqe.sqid].head = cqe.sqhd;
        if (cqe.sqid == 0) Learn(command, cqe.status);
      }
    }
    Trace("  CQ %u: sqid %u cid 0x%04x status 0x%04x (sct %u sc 0x%02x%s) dw0 0x%08x%s\n", cqid, cqe.sqid, cqe.cid, cqe.status,
          (cqe.status >> 9) & 7, (cqe.status >> 1) & 0xff, (cqe.status & 0x8000) ? " DNR" : "", cqe.dw0, valid ? "" : " (unexpected)");
    if (!valid) strict_ = false;  // someone wrote into the ring (a hostile data pointer can)
    if (++cq.head == cq.entries) {
      cq.head = 0;
      cq.phase ^= 1;
    }
  }
  if (fresh > 0) SetBar32(spec::cqHeadDoorbellOffset(cqid, 0), cq.head);
}

void Harness::Consume() {
  // Completions make room for more work; a few rounds drain what they free.
  for (int round = 0; round < 8; round++) {
    bool any = false;
    for (uint16_t q = 0; q <= kMaxQueueId; q++) {
      if (!cqs_[q].exists) continue;
      uint32_t before = cqs_[q].head;
      uint8_t phase = cqs_[q].phase;
      ConsumeCq(q);
      any = any || before != cqs_[q].head || phase != cqs_[q].phase;
    }
    if (!any) return;
    RunUntilIdle();
  }
}

// After CC changes, a VF going offline or a host detach: the controller may
// have deleted every queue; a driver starts its bookkeeping over.
void Harness::AfterStateChange(bool was_ready) {
  bool ready = Ready();
  if (ready && was_ready) return;
  for (uint16_t q = 0; q <= kMaxQueueId; q++) {
    sqs_[q] = HostSq{};
    cqs_[q] = HostCq{};
    pending_[q].clear();
  }
  if (!ready) return;
  // A fresh enable: the admin queue pair as the registers name it.
  uint32_t aqa = Bar32(kRegAqa);
  uint64_t asq = Bar32(kRegAsq) | (uint64_t{Bar32(kRegAsq + 4)} << 32);
  uint64_t acq = Bar32(kRegAcq) | (uint64_t{Bar32(kRegAcq + 4)} << 32);
  sqs_[0] = HostSq{true, spec::aqa::ASQS.get(aqa) + 1, asq, 0, 0, 0};
  cqs_[0] = HostCq{true, spec::aqa::ACQS.get(aqa) + 1, acq, 0, 1};
}

void Harness::NoteHostWrite(uint64_t iova, uint64_t length) {
  for (uint16_t q = 0; q <= kMaxQueueId; q++) {
    auto overlaps = [&](uint64_t base, uint64_t bytes) { return iova < base + bytes && base < iova + length; };
    if (sqs_[q].exists && overlaps(sqs_[q].iova, uint64_t{sqs_[q].entries} * 64)) strict_ = false;
    if (cqs_[q].exists && overlaps(cqs_[q].iova, uint64_t{cqs_[q].entries} * 16)) strict_ = false;
  }
}

void Harness::Ring(uint16_t sqid) {
  SetBar32(spec::sqTailDoorbellOffset(sqid, 0), sqs_[sqid].tail);
  RunUntilIdle();
  Consume();
}

// Places an SQE at the host's tail of an SQ it knows (making room first, as
// a driver would); ring = write the doorbell and run.
bool Harness::Submit(uint16_t sqid, const uint8_t bytes[64], bool ring) {
  HostSq& sq = sqs_[sqid];
  if (!sq.exists) return false;
  if ((sq.tail + 1) % sq.entries == sq.head) {
    SetBar32(spec::sqTailDoorbellOffset(sqid, 0), sq.tail);
    RunUntilIdle();
    Consume();
    if ((sq.tail + 1) % sq.entries == sq.head) return false;  // still full: a driver waits
  }
  uint8_t* slot = Host(sq.iova + uint64_t{sq.tail} * 64, 64);
  if (slot == nullptr) return false;
  memcpy(slot, bytes, 64);
  Pending pending;
  Trace("  submit sq %u slot %u: opc 0x%02x cid 0x%04x\n", sqid, sq.tail, bytes[0], bytes[2] | (bytes[3] << 8));
  memcpy(pending.sqe, bytes, 64);
  memcpy(&pending.cid, bytes + 2, 2);
  pending_[sqid].push_back(pending);
  sq.tail = (sq.tail + 1) % sq.entries;
  if (ring) Ring(sqid);
  return true;
}

// ---------------------------------------------------------------------------
// Ops

// An address the fuzzer names: mostly relative to a region, so that valid
// and boundary pointers are easy to reach.
uint64_t Harness::Address() {
  uint8_t selector = in_->U8();
  switch (selector % 10) {
    case 0: return r1_.iova + kDataOffset + (in_->U32() % kDataBytes & ~uint64_t{3});
    case 1: return r1_.iova + kDataOffset + uint64_t{in_->U8() % (kDataBytes / 4096)} * 4096;
    case 2: return r1_.iova + in_->U32();                                // anywhere from R1's base, rings too
    case 3: return r2_.iova + (in_->U32() % (kR2Bytes + 8192));          // R2 and just past it
    case 4: return r3_.iova + (in_->U32() % kR3Bytes);                   // the top of the IOVA space
    case 5: return r1_.iova + r1_.bytes - (in_->U8() % 64) * 8;          // R1's end (R2 follows)
    case 6: return r3_.iova + r3_.bytes - (in_->U8() % 64) * 8;          // R3's end (nothing follows)
    case 7: return kUnmappedIova + in_->U16();
    case 8: return r1_.iova - 4096 + (in_->U16() % 8192);                // around R1's start
    default: return in_->U64();
  }
}

void Harness::OpAdminSqe() {
  alignas(8) uint8_t sqe[64];
  in_->Bytes(sqe, 64);
  uint8_t fix = in_->U8();
  auto* s = reinterpret_cast<spec::Sqe*>(sqe);
  if (fix & 1) s->dptr.prp.prp1 = Address();
  if (fix & 2) s->dptr.prp.prp2 = Address();
  if (fix & 4) s->flags = 0;
  if (fix & 8) {
    const uint32_t nsids[] = {0, ns_a_, ns_b_, ns_secret_, 0xffffffffu, 4, 1024};
    s->nsid = nsids[in_->U8() % 7];
  }
  if (fix & 16) s->opc = kAdminOpcodes[in_->U8() % sizeof kAdminOpcodes];
  if (fix & 32) s->cid = static_cast<uint16_t>(next_cid_++);
  Submit(0, sqe, true);
}

void Harness::ReadIoSqe(uint8_t sqe[64], uint16_t* sqid) {
  uint8_t q = in_->U8();
  *sqid = (q & 0x80) ? static_cast<uint16_t>(q % (kMaxQueueId + 1)) : static_cast<uint16_t>(1 + (q & 1));
  in_->Bytes(sqe, 64);
  uint8_t fix = in_->U8();
  auto* s = reinterpret_cast<spec::Sqe*>(sqe);
  if (fix & 1) s->opc = kIoOpcodes[in_->U8() % sizeof kIoOpcodes];
  if (fix & 2) {
    const uint32_t nsids[] = {ns_a_, ns_b_, ns_secret_, 0, 0xffffffffu, 4};
    s->nsid = nsids[in_->U8() % 6];
  }
  if (fix & 4) {  // a small, mostly in-range LBA range
    s->cdw10 = in_->U16() % 4096;
    s->cdw11 = 0;
    s->cdw12 = (s->cdw12 & 0xffff0000u) | (in_->U8() % 128);
  }
  if (fix & 8) {  // PRPs
    s->flags = static_cast<uint8_t>(s->flags & 0x3c);
    s->dptr.prp.prp1 = Address();
    s->dptr.prp.prp2 = Address();
  } else if (fix & 16) {  // an SGL: data block, segment or last segment in the SQE
    s->flags = static_cast<uint8_t>((s->flags & 0x3c) | (1u << 6));
    uint8_t* sgl = sqe + 24;
    uint64_t address = Address();
    uint32_t length = (fix & 32) ? in_->U32() : in_->U16();
    memcpy(sgl, &address, 8);
    memcpy(sgl + 8, &length, 4);
    uint8_t identifier = in_->U8();
    sgl[15] = (identifier & 0x80) ? identifier : static_cast<uint8_t>(identifier & 0x30);  // mostly valid types
  }
  if (fix & 64) s->cid = static_cast<uint16_t>(next_cid_++);
}

void Harness::OpIoSqe() {
  alignas(8) uint8_t sqe[64];
  uint16_t sqid;
  ReadIoSqe(sqe, &sqid);
  Submit(sqid, sqe, true);
}

void Harness::OpBatch() {
  uint8_t count = static_cast<uint8_t>(1 + in_->U8() % 48);
  bool touched[kMaxQueueId + 1] = {};
  for (uint8_t i = 0; i < count && !in_->empty(); i++) {
    alignas(8) uint8_t sqe[64];
    uint16_t sqid;
    ReadIoSqe(sqe, &sqid);
    if (Submit(sqid, sqe, false)) touched[sqid] = true;
  }
  for (uint16_t q = 0; q <= kMaxQueueId; q++)
    if (touched[q] && sqs_[q].exists) SetBar32(spec::sqTailDoorbellOffset(q, 0), sqs_[q].tail);
  RunUntilIdle();
  Consume();
}

void Harness::OpDmaWrite() {
  uint64_t iova = Address();
  uint16_t length = static_cast<uint16_t>(in_->U16() % 4097);
  std::vector<uint8_t> bytes(length);
  in_->Bytes(bytes.data(), length);
  uint8_t* host = Host(iova, length);
  if (host == nullptr || length == 0) return;
  NoteHostWrite(iova, length);
  memcpy(host, bytes.data(), length);
}

void Harness::OpPrpList() {
  uint64_t iova = Address() & ~uint64_t{7};
  uint16_t count = static_cast<uint16_t>(1 + in_->U8() % 128);
  std::vector<uint64_t> entries(count);
  for (auto& entry : entries) {
    uint8_t how = in_->U8();
    entry = (how & 0x80) ? Address() : ((how & 0x40) ? iova + (how & 0x3f) * 8 : (Address() & ~uint64_t{4095}));
  }
  uint8_t* host = Host(iova, count * 8);
  if (host == nullptr) return;
  NoteHostWrite(iova, count * 8);
  memcpy(host, entries.data(), count * 8);
}

void Harness::OpSglSegment() {
  uint64_t iova = Address();
  uint8_t count = static_cast<uint8_t>(1 + in_->U8() % 32);
  std::vector<uint8_t> descriptors(size_t{count} * 16);
  for (uint8_t i = 0; i < count; i++) {
    uint8_t* d = &descriptors[size_t{i} * 16];
    uint8_t kind = in_->U8();
    uint64_t address = Address();
    uint32_t length = (kind & 0x40) ? in_->U32() : (kind & 0x80) ? uint32_t{in_->U8()} * 16 : in_->U16();
    memcpy(d, &address, 8);
    memcpy(d + 8, &length, 4);
    memset(d + 12, 0, 3);
    // Type in the high nibble: 0 data block, 1 bit bucket, 2 segment, 3 last segment.
    d[15] = static_cast<uint8_t>(((kind & 3) << 4) | ((kind & 0x20) ? (in_->U8() & 0xf) : 0));
  }
  uint8_t* host = Host(iova, descriptors.size());
  if (host == nullptr) return;
  NoteHostWrite(iova, descriptors.size());
  memcpy(host, descriptors.data(), descriptors.size());
}

void Harness::OpDoorbell() {
  uint16_t index = in_->U16();
  uint32_t value = in_->U32();
  if (index & 0x8000) {
    // Near a real queue's doorbell: a value that is just in or out of range.
    uint16_t q = static_cast<uint16_t>(index % (kMaxQueueId + 1));
    bool cq = (index >> 8) & 1;
    uint32_t entries = cq ? cqs_[q].entries : sqs_[q].entries;
    value = entries + (value % 5) - 2;
    SetBar32(cq ? spec::cqHeadDoorbellOffset(q, 0) : spec::sqTailDoorbellOffset(q, 0), value);
  } else {
    SetBar32(kDoorbellBase + (index % ((kEmulatorPageOffset - kDoorbellBase) / 4)) * 4, value);
  }
  strict_ = false;
  bool was_ready = Ready();
  RunUntilIdle();
  AfterStateChange(was_ready);
  Consume();
}

void Harness::OpCc() {
  uint8_t choice = in_->U8();
  uint32_t cc = Bar32(kRegCc);
  switch (choice % 6) {
    case 0: cc = 0; break;                                                    // disable (reset)
    case 1: cc = kCcEnable; break;                                            // enable
    case 2: cc = spec::cc::SHN.set(cc, 1); break;                             // normal shutdown
    case 3: cc = spec::cc::SHN.set(cc, 2); break;                             // abrupt shutdown
    case 4: cc = in_->U32(); strict_ = false; break;                          // anything
    default: cc = kCcEnable ^ (1u << (in_->U8() % 24)); break;                // one field wrong
  }
  bool was_ready = Ready();
  SetBar32(kRegCc, cc);
  RunUntilIdle();
  AfterStateChange(was_ready);
  Consume();
}

void Harness::OpRegister() {
  const uint32_t offsets[] = {kRegAqa, kRegAsq, kRegAsq + 4, kRegAcq, kRegAcq + 4, kRegCsts, 0x0c, 0x10, 0x20, 0x00};
  uint8_t which = in_->U8();
  uint32_t value = in_->U32();
  uint32_t offset = (which & 0x80) ? (in_->U16() % 0x1000) & ~3u : offsets[which % 10];
  if (which & 0x40) {
    // An admin queue base relative to the regions (valid, misaligned, outside).
    uint64_t address = Address();
    if (offset == kRegAsq || offset == kRegAcq) {
      SetBar64(offset, address);
    } else {
      SetBar32(offset, static_cast<uint32_t>(address));
    }
  } else {
    SetBar32(offset, value);
  }
  strict_ = false;
  bool was_ready = Ready();
  RunUntilIdle();
  AfterStateChange(was_ready);
}

void Harness::OpTime() {
  now_ += std::chrono::microseconds(uint64_t{in_->U16()} * 100);
  RunUntilIdle();
  Consume();
}

// The control plane's moves, made directly on the subsystem (as the PF's
// commands would make them), interleaved with the host's traffic. None of
// them ever gives VF 1 the SECRET namespace.
void Harness::OpControl() {
  uint8_t action = in_->U8();
  Store& store = subsystem_->store();
  std::string error;
  bool was_ready = Ready();
  switch (action % 14) {
    case 0:  // VF 1 offline (Virtualization Management: offline releases its resources)
      vf1_->SetOnline(false);
      vf1_->SetAssigned(0, 0);
      break;
    case 1:  // VF 1 online again with fresh resources
      if (!vf1_->online()) {
        vf1_->SetAssigned(static_cast<uint16_t>(2 + in_->U8() % 8), static_cast<uint16_t>(1 + in_->U8() % 5));
        vf1_->SetOnline(true);
      }
      break;
    case 2:  // read-only VSIC on/off (vendor C3h)
      read_only_ = !read_only_;
      vf1_->SetReadOnly(read_only_);
      break;
    case 3: {  // QoS limits (vendor C1h)
      uint32_t iops = in_->U16() % 2000;
      uint64_t bytes = uint64_t{in_->U16()} * 1024;
      store.SetLimits(ControllerLimits{1, iops, bytes});
      subsystem_->NamespacesChanged();
      break;
    }
    case 4:
      store.SetLimits(ControllerLimits{1, 0, 0});
      subsystem_->NamespacesChanged();
      break;
    case 5: {  // resize A or B (vendor C0h): shrink under the host's feet, or grow
      uint32_t nsid = (in_->U8() & 1) ? ns_a_ : ns_b_;
      store.ResizeNamespace(nsid, 1 + in_->U16() % 4096);
      subsystem_->NamespacesChanged();
      break;
    }
    case 6:  // detach A from VF 1 (Namespace Attachment)
      store.Detach(ns_a_, 1);
      subsystem_->NamespacesChanged();
      break;
    case 7:
      store.Attach(ns_a_, 1);
      subsystem_->NamespacesChanged();
      break;
    case 8:  // the host's connection closed: function-level reset, mappings dropped
      vf1_->DetachHost();
      for (HostRegion* r : {&r1_, &r2_, &r3_}) r->registered = false;
      strict_ = false;
      break;
    case 9:
      MapRegions();
      break;
    case 10: {  // unmap one region (refused while it holds a live queue)
      HostRegion* regions[] = {&r1_, &r2_, &r3_};
      HostRegion* r = regions[in_->U8() % 3];
      if (vf1_->UnmapDma(r->iova, &error).empty()) r->registered = false;
      break;
    }
    case 11: {  // a new interrupt eventfd for a vector (maybe out of range)
      int fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
      if (fd >= 0 && !vf1_->SetInterruptFd(in_->U8() % 8, fd, &error).empty()) close(fd);
      break;
    }
    case 12:  // a namespace appears and goes (notices, changed-namespace log)
    {
      uint32_t nsid = 0;
      if (store.CreateNamespace(1 + in_->U8(), 512, &nsid) == 0) {
        store.Attach(nsid, 1);
        subsystem_->NamespacesChanged();
        RunUntilIdle();
        store.Detach(nsid, 1);
        store.DeleteNamespace(nsid);
        subsystem_->NamespacesChanged();
      }
      break;
    }
    default: {  // re-enable and recreate the I/O queues, as a driver recovering
      if (EnableController()) CreateIoQueues();
      break;
    }
  }
  RunUntilIdle();
  AfterStateChange(was_ready);
  Consume();
}

// ---------------------------------------------------------------------------

void Harness::Check(const char* after) {
  if (memcmp(canary_.host, canary_pattern_.data(), kCanaryBytes) != 0) {
    size_t at = 0;
    while (canary_.host[at] == canary_pattern_[at]) at++;
    Finding("VF 2's DMA region changed at offset %zu (after %s)", at, after);
  }
  if (memcmp(bar2_, bar2_initial_.data(), kBarBytes) != 0) Finding("VF 2's BAR changed (after %s)", after);
  if (memcmp(pf_bar_, pf_bar_initial_.data(), kBarBytes) != 0) Finding("the PF's BAR changed (after %s)", after);
  for (HostRegion* r : {&r1_, &r2_, &r3_})
    if (ContainsMarker(r->host, r->bytes)) Finding("SECRET (VF 2's namespace) data appeared in VF 1's region %s (after %s)", r->name, after);
}

void Harness::Run() {
  Setup();
  // Configuration: queue sizes (small ones make full queues common).
  uint8_t admin = in_->U8();
  uint8_t io = in_->U8();
  admin_sq_entries_ = 2 + (admin & 0xf) * 4;         // 2..62
  admin_cq_entries_ = 2 + (admin >> 4) * 16;         // 2..242
  io_sq_entries_ = 2 + (io & 0x7) * 18;              // 2..128
  io_cq_entries_ = 2 + ((io >> 3) & 0xf) * 16;       // 2..242
  io_interrupts_ = (io & 0x80) != 0;
  BringUp();
  size_t ops = 0;
  while (!in_->empty() && ops++ < kMaxOps) {
    uint8_t op = in_->U8();
    static const char* const names[] = {"admin-sqe", "io-sqe", "dma-write", "prp-list", "sgl-segment", "doorbell", "cc",
                                        "register", "reenable", "consume", "time", "control", "batch"};
    Trace("op %zu: %s (CSTS 0x%x)\n", ops, names[op % kOpCount], Bar32(kRegCsts));
    switch (op % kOpCount) {
      case kOpAdminSqe: OpAdminSqe(); break;
      case kOpIoSqe: OpIoSqe(); break;
      case kOpDmaWrite: OpDmaWrite(); break;
      case kOpPrpList: OpPrpList(); break;
      case kOpSglSegment: OpSglSegment(); break;
      case kOpDoorbell: OpDoorbell(); break;
      case kOpCc: OpCc(); break;
      case kOpRegister: OpRegister(); break;
      case kOpReenable:
        if (EnableController()) CreateIoQueues();
        break;
      case kOpConsume:
        RunUntilIdle();
        Consume();
        break;
      case kOpTime: OpTime(); break;
      case kOpControl: OpControl(); break;
      case kOpBatch: OpBatch(); break;
    }
  }
  Check("the program");
  // SECRET itself: same size, still VF 2's alone, same bytes.
  Store& store = subsystem_->store();
  NamespaceInfo info;
  if (!store.GetNamespace(ns_secret_, &info) || info.size_blocks != kSecretBlocks || info.block_bytes != 4096 ||
      info.attached_controllers != std::vector<uint16_t>{2})
    Finding("the SECRET namespace's metadata changed (size, format or attachments)");
  std::vector<uint8_t> now(secret_.size());
  Segment segment{now.data(), now.size()};
  if (store.Read(ns_secret_, 0, kSecretBlocks, &segment, 1) != 0) Finding("the SECRET namespace cannot be read back");
  if (now != secret_) Finding("the SECRET namespace's data changed");
}

// ---------------------------------------------------------------------------
// Seeds: a handful of valid programs, written with the same encoding.

class SeedWriter {
 public:
  std::vector<uint8_t> bytes;
  void U8(uint8_t v) { bytes.push_back(v); }
  void U16(uint16_t v) { U8(static_cast<uint8_t>(v)), U8(static_cast<uint8_t>(v >> 8)); }
  void U32(uint32_t v) { U16(static_cast<uint16_t>(v)), U16(static_cast<uint16_t>(v >> 16)); }
  void U64(uint64_t v) { U32(static_cast<uint32_t>(v)), U32(static_cast<uint32_t>(v >> 32)); }
  void Sqe(const spec::Sqe& sqe) {
    const auto* raw = reinterpret_cast<const uint8_t*>(&sqe);
    bytes.insert(bytes.end(), raw, raw + 64);
  }
  // Address selector 1: page n of the data area; 0: data offset.
  void DataPage(uint8_t page) { U8(1), U8(page); }
  void DataOffset(uint32_t offset) { U8(0), U32(offset); }
  void Admin(const spec::Sqe& sqe, uint8_t fix) { U8(kOpAdminSqe), Sqe(sqe), U8(fix); }
  void Io(uint8_t q, const spec::Sqe& sqe, uint8_t fix) { U8(kOpIoSqe), U8(q), Sqe(sqe), U8(fix); }
};

spec::Sqe MakeSqe(uint8_t opc, uint32_t nsid, uint32_t cdw10, uint32_t cdw11, uint32_t cdw12 = 0) {
  spec::Sqe sqe{};
  sqe.opc = opc;
  sqe.cid = 0x100;
  sqe.nsid = nsid;
  sqe.cdw10 = cdw10;
  sqe.cdw11 = cdw11;
  sqe.cdw12 = cdw12;
  return sqe;
}

void WriteSeeds(const char* dir) {
  std::vector<std::pair<std::string, std::vector<uint8_t>>> seeds;
  // Configuration bytes: admin SQ 30 / CQ 34 entries; I/O SQ 74 / CQ 2, no interrupts.
  const uint8_t config = 0x27, io_config = 0x04;
  {  // Identify controller, namespace, active list, descriptors; Get Log Page
    SeedWriter w;
    w.U8(config), w.U8(io_config);
    for (uint32_t cns : {1u, 0u, 2u, 3u}) {
      w.Admin(MakeSqe(0x06, 1, cns, 0), 1 | 4);
      w.DataPage(static_cast<uint8_t>(cns));
    }
    w.Admin(MakeSqe(0x02, 0, (1023u << 16) | 0x02, 0), 1 | 4);  // SMART, 4 KiB
    w.DataPage(8);
    w.Admin(MakeSqe(0x02, 0, (15u << 16) | 0x01, 0), 1 | 4);  // error log, 64 bytes
    w.DataPage(9);
    seeds.emplace_back("identify", w.bytes);
  }
  {  // Create another I/O queue pair (queue 3 was not granted: refused), delete and recreate 2
    SeedWriter w;
    w.U8(config), w.U8(io_config);
    w.Admin(MakeSqe(0x00, 0, 2, 0), 0);                           // delete SQ 2
    w.Admin(MakeSqe(0x04, 0, 2, 0), 0);                           // delete CQ 2
    w.Admin(MakeSqe(0x05, 0, (63u << 16) | 2, 1), 1);             // create CQ 2, 64 entries
    w.DataPage(100);
    w.Admin(MakeSqe(0x01, 0, (31u << 16) | 2, (2u << 16) | 1), 1);  // create SQ 2 -> CQ 2
    w.DataPage(101);
    w.Admin(MakeSqe(0x05, 0, (15u << 16) | 3, 1), 1);             // CQ 3: not granted
    w.DataPage(102);
    w.Admin(MakeSqe(0x0c, 0, 0, 0), 0);                           // an AER stays outstanding
    w.U8(kOpConsume);
    seeds.emplace_back("create-queues", w.bytes);
  }
  {  // Write then read 64 KiB with a PRP list, at an unaligned PRP1
    SeedWriter w;
    w.U8(config), w.U8(io_config);
    w.U8(kOpDmaWrite), w.DataPage(10), w.U16(4096);
    for (int i = 0; i < 4096; i++) w.U8(static_cast<uint8_t>(i * 13));
    w.U8(kOpPrpList), w.DataPage(40), w.U8(15);  // 16 entries
    for (uint8_t page = 11; page < 27; page++) w.U8(0), w.DataPage(page);
    for (uint8_t opc : {0x01, 0x02}) {
      spec::Sqe sqe = MakeSqe(opc, 0, 0, 0, 127);  // 128 blocks of 512 B = 64 KiB
      sqe.dptr.prp.prp1 = 0;
      w.U8(kOpIoSqe), w.U8(0), w.Sqe(sqe), w.U8(2 | 8);
      w.U8(0);            // nsid: A
      w.DataOffset(10 * 4096 + 512);  // PRP1 mid-page
      w.DataPage(40);     // PRP2: the list
    }
    seeds.emplace_back("rw-prp-list", w.bytes);
  }
  {  // SGL: a segment chain (segment -> last segment) of data blocks
    SeedWriter w;
    w.U8(config), w.U8(io_config);
    // Last segment at page 60: two data blocks of 4 KiB.
    w.U8(kOpSglSegment), w.DataPage(60), w.U8(1);
    w.U8(0x00), w.DataPage(70), w.U16(4096);
    w.U8(0x00), w.DataPage(71), w.U16(4096);
    // Segment at page 61: one data block, then a pointer to the last segment.
    w.U8(kOpSglSegment), w.DataPage(61), w.U8(1);
    w.U8(0x00), w.DataPage(72), w.U16(4096);
    w.U8(0x03), w.DataPage(60), w.U16(32);
    for (uint8_t opc : {0x01, 0x02, 0x05}) {
      spec::Sqe sqe = MakeSqe(opc, 0, 0, 0, 2);  // 3 blocks of 4 KiB (B)
      w.U8(kOpIoSqe), w.U8(1), w.Sqe(sqe), w.U8(2 | 16);
      w.U8(1);            // nsid: B
      w.DataPage(61);     // SGL1: segment at page 61, 32 bytes
      w.U16(32);
      w.U8(0x20);         // type 2 (segment)
    }
    seeds.emplace_back("sgl-chain", w.bytes);
  }
  {  // Dataset management, write zeroes, flush, compare; CC shutdown; re-enable
    SeedWriter w;
    w.U8(config), w.U8(io_config | 0x80);
    w.U8(kOpDmaWrite), w.DataPage(5), w.U16(32);
    for (int i = 0; i < 2; i++) w.U32(0), w.U32(8), w.U64(uint64_t(i) * 64);
    spec::Sqe dsm = MakeSqe(0x09, 0, 1, 4);
    w.U8(kOpIoSqe), w.U8(0), w.Sqe(dsm), w.U8(2 | 8), w.U8(0), w.DataPage(5), w.DataPage(6);
    spec::Sqe zeroes = MakeSqe(0x08, 0, 10, 0, 7);
    w.U8(kOpIoSqe), w.U8(1), w.Sqe(zeroes), w.U8(2), w.U8(1);
    spec::Sqe flush = MakeSqe(0x00, 0xffffffffu, 0, 0);
    w.U8(kOpIoSqe), w.U8(0), w.Sqe(flush), w.U8(0);
    w.U8(kOpCc), w.U8(2);  // normal shutdown
    w.U8(kOpReenable);
    spec::Sqe read = MakeSqe(0x02, 0, 0, 0, 0);
    w.U8(kOpIoSqe), w.U8(1), w.Sqe(read), w.U8(2 | 8), w.U8(1), w.DataPage(7), w.DataPage(8);
    seeds.emplace_back("dsm-zeroes-shutdown", w.bytes);
  }
  {  // Control plane on the side: limits, read-only, offline, online, re-enable
    SeedWriter w;
    w.U8(config), w.U8(io_config);
    w.U8(kOpControl), w.U8(3), w.U16(100), w.U16(64);
    w.U8(kOpBatch), w.U8(7);
    for (int i = 0; i < 8; i++) {
      spec::Sqe read = MakeSqe(0x02, 0, uint32_t(i), 0, 7);
      w.U8(0), w.Sqe(read), w.U8(2 | 8), w.U8(0), w.DataPage(uint8_t(20 + i)), w.DataPage(0);
    }
    w.U8(kOpControl), w.U8(2);   // read-only
    spec::Sqe write = MakeSqe(0x01, 0, 0, 0, 0);
    w.U8(kOpIoSqe), w.U8(0), w.Sqe(write), w.U8(2 | 8), w.U8(0), w.DataPage(1), w.DataPage(0);
    w.U8(kOpControl), w.U8(0);   // offline
    w.U8(kOpControl), w.U8(1), w.U8(7), w.U8(4);  // online
    w.U8(kOpReenable);
    w.U8(kOpDoorbell), w.U16(0x8001), w.U32(3);   // SQ 1 tail near its end
    seeds.emplace_back("control-plane", w.bytes);
  }
  {  // Asynchronous events: two AERs outstanding, Get Features, an Abort of one AER, a
     // namespace notice (the control plane attaches a new namespace), the changed list
    SeedWriter w;
    w.U8(config), w.U8(io_config);
    spec::Sqe aer = MakeSqe(0x0c, 0, 0, 0);
    aer.cid = 0x0a01;
    w.Admin(aer, 0);
    aer.cid = 0x0a02;
    w.Admin(aer, 0);
    w.Admin(MakeSqe(0x0a, 0, 0x0b, 0), 0);                 // Get Features: async event config
    w.Admin(MakeSqe(0x08, 0, (0x0a01u << 16) | 0, 0), 0);  // Abort SQ 0, CID 0x0a01
    w.U8(kOpControl), w.U8(12), w.U8(8);                   // a namespace comes and goes
    w.Admin(MakeSqe(0x02, 0, (1023u << 16) | 0x04, 0), 1 | 4);  // changed namespace list
    w.DataPage(3);
    seeds.emplace_back("aer-abort", w.bytes);
  }
  {  // A 128 KiB write and read with a PRP list that starts 16 bytes before a page
     // end and chains (its last slot) to a second list page
    SeedWriter w;
    w.U8(config), w.U8(io_config);
    w.U8(kOpPrpList), w.DataOffset(50 * 4096 + 4080), w.U8(1);  // 2 entries
    w.U8(0), w.DataPage(11);                                    // data page
    w.U8(0x80), w.DataPage(51);                                 // chain to the next list page
    w.U8(kOpPrpList), w.DataPage(51), w.U8(29);                 // 30 entries
    for (uint8_t page = 12; page < 42; page++) w.U8(0), w.DataPage(page);
    for (uint8_t opc : {0x01, 0x02}) {
      spec::Sqe sqe = MakeSqe(opc, 0, 0, 0, 31);  // 32 blocks of 4 KiB (B)
      w.U8(kOpIoSqe), w.U8(1), w.Sqe(sqe), w.U8(2 | 8);
      w.U8(1);                                   // nsid: B
      w.DataPage(10);                            // PRP1
      w.DataOffset(50 * 4096 + 4080);            // PRP2: the list
    }
    seeds.emplace_back("prp-chain", w.bytes);
  }
  {  // QoS throttling and interrupt coalescing: 40 reads against a 50 IOPS limit on an
     // interrupting CQ with threshold 3 and 1 ms aggregation time
    SeedWriter w;
    w.U8(config), w.U8(0x80 | (3 << 3) | 4);  // I/O SQ 74, CQ 50, interrupts on CQ 1
    w.Admin(MakeSqe(0x09, 0, 0x08, 3 | (10u << 8)), 0);  // Set Features: interrupt coalescing
    w.U8(kOpControl), w.U8(3), w.U16(50), w.U16(0);       // 50 IOPS
    w.U8(kOpBatch), w.U8(39);
    for (int i = 0; i < 40; i++) {
      spec::Sqe read = MakeSqe(0x02, 0, uint32_t(i), 0, 0);
      w.U8(0), w.Sqe(read), w.U8(2 | 8), w.U8(0), w.DataPage(uint8_t(20 + i % 8)), w.DataPage(0);
    }
    w.U8(kOpTime), w.U16(100);
    seeds.emplace_back("qos-coalescing", w.bytes);
  }
  for (const auto& [name, bytes] : seeds) {
    std::string path = std::string(dir) + "/" + name;
    FILE* file = fopen(path.c_str(), "wb");
    if (file == nullptr || fwrite(bytes.data(), 1, bytes.size(), file) != bytes.size()) {
      fprintf(stderr, "cannot write %s\n", path.c_str());
      exit(1);
    }
    fclose(file);
    printf("wrote %s (%zu bytes)\n", path.c_str(), bytes.size());
  }
}

}  // namespace

// Undefined behaviour stops the run like a crash does (fuzz/run.sh adds the
// suppressions of fuzz/known-findings.ubsan through UBSAN_OPTIONS).
extern "C" const char* __ubsan_default_options() { return "halt_on_error=1:print_stacktrace=1"; }

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  if (getrandom(&secret_marker, sizeof secret_marker, 0) != sizeof secret_marker || secret_marker == 0)
    secret_marker = Mix(static_cast<uint64_t>(Clock::now().time_since_epoch().count()));
  // The marker's first byte is what ContainsMarker looks for first: never zero.
  secret_marker |= 0x80;
  trace = getenv("OFFPATH_FUZZ_TRACE") != nullptr;
  if (const char* dir = getenv("OFFPATH_FUZZ_WRITE_SEEDS")) {
    WriteSeeds(dir);
    exit(0);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // A program that itself carries the marker could write it into VF 1's
  // memory; the marker is random per process, so this never happens by
  // chance, but keep the check honest.
  if (ContainsMarker(data, size)) return -1;
  Reader reader(data, size);
  Harness harness(&reader);
  harness.Run();
  return 0;
}
