// A native NVMe host loop for benchmarks. It drives one I/O queue pair of an
// emulator controller from C++, so that the client's own cost per command
// (several microseconds in JS) does not hide the emulator's. The queue pair is
// created by the TS driver; this code only gets its memory (BAR, SQ ring, CQ
// ring, a data buffer) and the poller's wake eventfd. Beside it, a pread/pwrite
// loop in the same harness measures the kernel path as a reference.
//
//   benchQueueRun(options)   -> result   blocks the calling thread for the run
//   benchFileRun(options)    -> result
//   benchCoreToCore(options) -> { roundTripNs }  cache-line ping-pong, CPU 0 <-> 1
//
// Per command there is no allocation and no syscall (except the wake-up write
// when the poller sleeps); every wait is bounded by options.timeoutMs and a
// timeout is returned (timedOut: true), never a hang. 4 KiB commands only: the
// namespace must be formatted with 4 KiB blocks.
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "bar_layout.h"
#include "errors.h"
#include "offpath/nvme_spec.h"
#include "registry.h"

namespace offpath {
namespace {

namespace nvme = offpath::nvme;

constexpr uint32_t kBlockBytes = 4096;

uint64_t NowNs(clockid_t clock = CLOCK_MONOTONIC) {
  timespec ts;
  clock_gettime(clock, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

inline void CpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#else
  std::atomic_signal_fence(std::memory_order_seq_cst);
#endif
}

// Log-linear histogram of nanoseconds: 32 sub-buckets per power of two, and a
// percentile is reported as its bucket's midpoint, so within ±1.6%; allocated
// once per run.
class LatencyHistogram {
 public:
  LatencyHistogram() : counts_(kBuckets, 0) {}

  void Add(uint64_t ns) {
    counts_[Index(ns)]++;
    count_++;
    sum_ += ns;
    if (ns < min_) min_ = ns;
    if (ns > max_) max_ = ns;
  }

  // The midpoint of the bucket holding the q-quantile (nearest rank).
  uint64_t Quantile(double q) const {
    if (count_ == 0) return 0;
    auto rank = static_cast<uint64_t>(q * static_cast<double>(count_) + 0.999999);
    if (rank == 0) rank = 1;
    uint64_t seen = 0;
    for (uint32_t b = 0; b < kBuckets; b++) {
      seen += counts_[b];
      if (seen >= rank) return std::min(std::max(Midpoint(b), min_), max_);
    }
    return max_;
  }

  Napi::Object ToJs(Napi::Env env) const {
    auto out = Napi::Object::New(env);
    out.Set("count", static_cast<double>(count_));
    out.Set("minNs", static_cast<double>(count_ ? min_ : 0));
    out.Set("meanNs", count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0.0);
    out.Set("p50Ns", static_cast<double>(Quantile(0.50)));
    out.Set("p99Ns", static_cast<double>(Quantile(0.99)));
    out.Set("p999Ns", static_cast<double>(Quantile(0.999)));
    out.Set("maxNs", static_cast<double>(max_));
    return out;
  }

 private:
  static constexpr uint32_t kSubBits = 5;
  static constexpr uint32_t kSub = 1u << kSubBits;
  static constexpr uint32_t kMaxExp = 40;  // 2^41 ns (~37 min) and above share the last bucket
  static constexpr uint32_t kBuckets = (kMaxExp - kSubBits + 2) * kSub;

  static uint32_t Index(uint64_t v) {
    if (v < kSub) return static_cast<uint32_t>(v);
    uint32_t exp = 63 - static_cast<uint32_t>(__builtin_clzll(v));
    if (exp > kMaxExp) return kBuckets - 1;
    uint32_t shift = exp - kSubBits;
    return (shift + 1) * kSub + static_cast<uint32_t>((v >> shift) - kSub);
  }
  static uint64_t Midpoint(uint32_t b) {
    if (b < kSub) return b;
    uint32_t shift = b / kSub - 1;
    uint64_t lower = static_cast<uint64_t>(kSub + b % kSub) << shift;
    return lower + ((uint64_t{1} << shift) >> 1);
  }

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0, sum_ = 0, min_ = UINT64_MAX, max_ = 0;
};

// xorshift64*: a cheap uniform LBA picker (a few ns), reproducible from a seed.
struct Random {
  uint64_t state;
  uint64_t Below(uint64_t bound) {
    state ^= state >> 12;
    state ^= state << 25;
    state ^= state >> 27;
    uint64_t x = state * 0x2545F4914F6CDD1Dull;
    return static_cast<uint64_t>((static_cast<unsigned __int128>(x) * bound) >> 64);
  }
};

// Stamped blocks let a read check that it got the block it asked for: every
// 8-byte word is derived from the LBA and its index.
uint64_t StampWord(uint64_t lba, uint32_t i) { return (lba << 12 | i) ^ 0x6f66667061746821ull; }
void Stamp(uint8_t* block, uint64_t lba) {
  for (uint32_t i = 0; i < kBlockBytes / 8; i++) {
    uint64_t w = StampWord(lba, i);
    memcpy(block + 8 * i, &w, 8);
  }
}
bool StampMatches(const uint8_t* block, uint64_t lba) {
  for (uint32_t i = 0; i < kBlockBytes / 8; i++) {
    uint64_t w;
    memcpy(&w, block + 8 * i, 8);
    if (w != StampWord(lba, i)) return false;
  }
  return true;
}

// --- option readers -------------------------------------------------------

int64_t Integer(const Napi::Object& o, const char* key, int64_t min, int64_t max, const int64_t* fallback) {
  Napi::Value v = o.Get(key);
  if (v.IsUndefined() && fallback != nullptr) return *fallback;
  if (!v.IsNumber()) ThrowType(o.Env(), std::string("options.") + key + " must be an integer");
  double d = v.As<Napi::Number>().DoubleValue();
  if (d != static_cast<double>(static_cast<int64_t>(d)) || d < static_cast<double>(min) || d > static_cast<double>(max))
    ThrowRange(o.Env(), std::string("options.") + key + " must be an integer in [" + std::to_string(min) + ", " +
                            std::to_string(max) + "]");
  return static_cast<int64_t>(d);
}
int64_t Required(const Napi::Object& o, const char* key, int64_t min, int64_t max) {
  return Integer(o, key, min, max, nullptr);
}
int64_t Optional(const Napi::Object& o, const char* key, int64_t min, int64_t max, int64_t fallback) {
  return Integer(o, key, min, max, &fallback);
}

ByteSpan Bytes(const Napi::Object& o, const char* key) {
  Napi::Value v = o.Get(key);
  uint8_t* base = nullptr;
  size_t offset = 0, length = 0;
  if (v.IsArrayBuffer()) {
    auto b = v.As<Napi::ArrayBuffer>();
    base = static_cast<uint8_t*>(b.Data());
    length = b.ByteLength();
  } else if (v.IsTypedArray()) {
    auto a = v.As<Napi::TypedArray>();
    base = static_cast<uint8_t*>(a.ArrayBuffer().Data());
    offset = a.ByteOffset();
    length = a.ByteLength();
  } else {
    ThrowType(o.Env(), std::string("options.") + key + " must be an ArrayBuffer or a typed array");
  }
  if (base == nullptr) ThrowStorage(o.Env(), "ENOTMAPPED", std::string("options.") + key + " is detached (unmapped)");
  return {base + offset, length};
}

bool IsWrite(const Napi::Object& o) {
  Napi::Value v = o.Get("op");
  std::string op = v.IsString() ? v.As<Napi::String>().Utf8Value() : "";
  if (op != "read" && op != "write") ThrowType(o.Env(), "options.op must be 'read' or 'write'");
  return op == "write";
}

// Stop after `commands` or `durationMs`, whichever comes first (0 = no limit; one is required).
void Limits(const Napi::Object& o, uint64_t* commands, uint64_t* duration_ns) {
  *commands = static_cast<uint64_t>(Optional(o, "commands", 0, int64_t{1} << 50, 0));
  *duration_ns = static_cast<uint64_t>(Optional(o, "durationMs", 0, 3'600'000, 0)) * 1'000'000ull;
  if (*commands == 0 && *duration_ns == 0) ThrowRange(o.Env(), "options: give commands or durationMs");
  if (*commands == 0) *commands = UINT64_MAX;
}

// --- the queue loop ---------------------------------------------------------

struct QueueRun {
  // Inputs.
  uint8_t* bar;
  uint8_t* sq;
  uint8_t* cq;
  uint8_t* data;
  uint64_t data_iova;
  uint16_t qid;
  uint32_t entries;
  uint32_t nsid;
  uint64_t lba_count;
  uint32_t queue_depth;
  bool write;
  bool sequential;
  bool stamp;
  uint64_t commands;
  uint64_t duration_ns;
  uint64_t timeout_ns;
  int wake_fd;
  Random random;
  uint64_t next_sequential_lba;
  // Queue state, carried from one run to the next by the caller.
  uint32_t sq_tail, cq_head, phase;
  // Outputs.
  uint64_t submitted = 0, completed = 0, status_errors = 0, verify_errors = 0, stray_completions = 0;
  uint64_t wake_signals = 0, elapsed_ns = 0, client_cpu_ns = 0;
  // Time between seeing a completion and having rung the next doorbell: the
  // client's own work, as opposed to its waiting (which CPU time includes).
  uint64_t client_busy_ns = 0;
  bool timed_out = false;
  uint32_t csts_at_timeout = 0;
  LatencyHistogram latency;
};

void Run(QueueRun& r) {
  const uint32_t dstrd = static_cast<uint32_t>(nvme::cap::DSTRD.get(*reinterpret_cast<uint64_t*>(r.bar)));
  auto* sq_doorbell = reinterpret_cast<uint32_t*>(r.bar + nvme::sqTailDoorbellOffset(r.qid, dstrd));
  auto* cq_doorbell = reinterpret_cast<uint32_t*>(r.bar + nvme::cqHeadDoorbellOffset(r.qid, dstrd));
  auto* poller_sleeping = reinterpret_cast<uint32_t*>(r.bar + emu::kPollerSleepingOffset);
  auto* cqes = reinterpret_cast<nvme::Cqe*>(r.cq);
  const uint8_t opcode = nvme::raw(r.write ? nvme::NvmOpcode::WRITE : nvme::NvmOpcode::READ);

  // Command id = data slot; allocated once, before the clock starts.
  std::vector<uint16_t> free_cids(r.queue_depth);
  for (uint32_t i = 0; i < r.queue_depth; i++) free_cids[i] = static_cast<uint16_t>(r.queue_depth - 1 - i);
  uint32_t free_count = r.queue_depth;
  std::vector<uint64_t> submit_ns(r.queue_depth), lba_of(r.queue_depth);
  std::vector<uint8_t> outstanding(r.queue_depth, 0);
  uint32_t inflight = 0;

  const uint64_t cpu_start = NowNs(CLOCK_THREAD_CPUTIME_ID);
  uint64_t now = NowNs();
  const uint64_t start = now;
  const uint64_t deadline = r.duration_ns ? start + r.duration_ns : UINT64_MAX;
  uint64_t last_progress = now;

  auto submit = [&](uint64_t t) {
    uint32_t placed = 0;
    while (inflight < r.queue_depth && r.submitted < r.commands && t < deadline) {
      uint16_t cid = free_cids[--free_count];
      uint64_t lba = r.sequential ? r.next_sequential_lba++ % r.lba_count : r.random.Below(r.lba_count);
      uint8_t* block = r.data + size_t{cid} * kBlockBytes;
      if (r.write && r.stamp) Stamp(block, lba);
      nvme::Sqe sqe{};
      sqe.opc = opcode;
      sqe.cid = cid;
      sqe.nsid = r.nsid;
      sqe.dptr.prp.prp1 = r.data_iova + uint64_t{cid} * kBlockBytes;
      nvme::setSlba(sqe, lba);  // CDW12 NLB = 0: one block
      memcpy(r.sq + size_t{r.sq_tail} * sizeof(nvme::Sqe), &sqe, sizeof sqe);
      submit_ns[cid] = t;
      lba_of[cid] = lba;
      outstanding[cid] = 1;
      r.sq_tail = r.sq_tail + 1 == r.entries ? 0 : r.sq_tail + 1;
      inflight++;
      r.submitted++;
      placed++;
    }
    if (placed == 0) return;
    // seq_cst store: the SQEs are visible before the tail, and the store is
    // ordered before the flag load (the poller's lost-wake-up handshake).
    __atomic_store_n(sq_doorbell, r.sq_tail, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(poller_sleeping, __ATOMIC_SEQ_CST) != 0) {
      uint64_t one = 1;
      (void)!write(r.wake_fd, &one, sizeof one);  // EAGAIN: a wake-up is pending already
      r.wake_signals++;
    }
  };

  // Returns the completions consumed; `now` is read once a CQE is seen, so
  // every latency in the batch ends at or after its CQE was observed.
  auto reap = [&]() -> uint32_t {
    uint32_t found = 0;
    for (;;) {
      nvme::Cqe* cqe = &cqes[r.cq_head];
      uint16_t status = __atomic_load_n(&cqe->status, __ATOMIC_ACQUIRE);
      if ((status & 1u) != r.phase) break;
      if (found == 0) now = NowNs();
      uint16_t cid = cqe->cid;
      if (cid >= r.queue_depth || !outstanding[cid]) {
        r.stray_completions++;
      } else {
        if (!nvme::statusIsSuccess(status)) r.status_errors++;
        else if (!r.write && r.stamp && !StampMatches(r.data + size_t{cid} * kBlockBytes, lba_of[cid])) r.verify_errors++;
        r.latency.Add(now - submit_ns[cid]);
        outstanding[cid] = 0;
        free_cids[free_count++] = cid;
        inflight--;
        r.completed++;
      }
      r.cq_head = r.cq_head + 1 == r.entries ? 0 : r.cq_head + 1;
      if (r.cq_head == 0) r.phase ^= 1u;
      found++;
    }
    if (found > 0) __atomic_store_n(cq_doorbell, r.cq_head, __ATOMIC_RELEASE);
    return found;
  };

  submit(now);
  r.client_busy_ns += NowNs() - now;
  uint32_t idle_spins = 0;
  while (inflight > 0 || (r.submitted < r.commands && now < deadline)) {
    if (reap() > 0) {
      last_progress = now;
      idle_spins = 0;
      submit(now);
      r.client_busy_ns += NowNs() - now;
      continue;
    }
    CpuRelax();
    // Reading the clock on every empty poll would be most of the loop's cost.
    if (++idle_spins % 256 != 0) continue;
    now = NowNs();
    if (inflight == 0) submit(now);
    if (now - last_progress > r.timeout_ns) {
      r.timed_out = true;
      r.csts_at_timeout = __atomic_load_n(reinterpret_cast<uint32_t*>(r.bar + offsetof(nvme::ControllerRegisters, csts)),
                                          __ATOMIC_ACQUIRE);
      break;
    }
  }
  r.elapsed_ns = NowNs() - start;
  r.client_cpu_ns = NowNs(CLOCK_THREAD_CPUTIME_ID) - cpu_start;
}

Napi::Value BenchQueueRun(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "benchQueueRun: options must be an object");
  auto o = info[0].As<Napi::Object>();
  QueueRun r;
  ByteSpan bar = Bytes(o, "bar");
  ByteSpan sq = Bytes(o, "sqRing");
  ByteSpan cq = Bytes(o, "cqRing");
  ByteSpan data = Bytes(o, "data");
  if (bar.length < emu::kBarBytes) ThrowRange(env, "options.bar is smaller than the emulator's BAR");
  r.bar = bar.data;
  r.sq = sq.data;
  r.cq = cq.data;
  r.data = data.data;
  r.data_iova = static_cast<uint64_t>(Required(o, "dataIova", 1, int64_t{1} << 52));
  r.qid = static_cast<uint16_t>(Required(o, "qid", 1, emu::kMaxQueueId));
  r.entries = static_cast<uint32_t>(Required(o, "entries", 2, 65536));
  r.nsid = static_cast<uint32_t>(Required(o, "nsid", 1, 0xfffffffe));
  r.lba_count = static_cast<uint64_t>(Required(o, "lbaCount", 1, int64_t{1} << 48));
  r.queue_depth = static_cast<uint32_t>(Required(o, "queueDepth", 1, r.entries - 1));
  r.write = IsWrite(o);
  r.sequential = OptBool(o, "sequential", false);
  r.stamp = OptBool(o, "stamp", false);
  Limits(o, &r.commands, &r.duration_ns);
  r.timeout_ns = static_cast<uint64_t>(Optional(o, "timeoutMs", 1, 600'000, 5'000)) * 1'000'000ull;
  r.wake_fd = static_cast<int>(Required(o, "wakeFd", 0, INT32_MAX));
  r.random.state = static_cast<uint64_t>(Optional(o, "seed", 1, int64_t{1} << 52, 0x5eed));
  r.next_sequential_lba = static_cast<uint64_t>(Optional(o, "firstLba", 0, int64_t{1} << 48, 0));
  r.sq_tail = static_cast<uint32_t>(Optional(o, "sqTail", 0, r.entries - 1, 0));
  r.cq_head = static_cast<uint32_t>(Optional(o, "cqHead", 0, r.entries - 1, 0));
  r.phase = static_cast<uint32_t>(Optional(o, "phase", 0, 1, 1));
  if (sq.length < size_t{r.entries} * sizeof(nvme::Sqe) || cq.length < size_t{r.entries} * sizeof(nvme::Cqe))
    ThrowRange(env, "options.sqRing/cqRing are smaller than entries");
  if (data.length < size_t{r.queue_depth} * kBlockBytes) ThrowRange(env, "options.data must hold queueDepth blocks of 4 KiB");
  // One PRP entry per command: each 4 KiB slot must be exactly one page.
  if (r.data_iova % kBlockBytes != 0) ThrowRange(env, "options.dataIova must be 4 KiB aligned");

  Run(r);

  auto out = Napi::Object::New(env);
  out.Set("submitted", static_cast<double>(r.submitted));
  out.Set("completed", static_cast<double>(r.completed));
  out.Set("elapsedNs", static_cast<double>(r.elapsed_ns));
  out.Set("clientCpuNs", static_cast<double>(r.client_cpu_ns));
  out.Set("clientBusyNs", static_cast<double>(r.client_busy_ns));
  out.Set("statusErrors", static_cast<double>(r.status_errors));
  out.Set("verifyErrors", static_cast<double>(r.verify_errors));
  out.Set("strayCompletions", static_cast<double>(r.stray_completions));
  out.Set("wakeSignals", static_cast<double>(r.wake_signals));
  out.Set("latency", r.latency.ToJs(env));
  out.Set("sqTail", r.sq_tail);
  out.Set("cqHead", r.cq_head);
  out.Set("phase", r.phase);
  out.Set("nextLba", static_cast<double>(r.next_sequential_lba));
  out.Set("timedOut", r.timed_out);
  if (r.timed_out) {
    out.Set("error", "no completion for " + std::to_string(r.timeout_ns / 1'000'000) + " ms with " +
                         std::to_string(r.submitted - r.completed) + " commands outstanding (CSTS " +
                         std::to_string(r.csts_at_timeout) + ")");
  }
  return out;
}

// --- the kernel path: pread/pwrite of 4 KiB at QD1 ---------------------------

Napi::Value BenchFileRun(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsObject()) ThrowType(env, "benchFileRun: options must be an object");
  auto o = info[0].As<Napi::Object>();
  int fd = static_cast<int>(Required(o, "fd", 0, INT32_MAX));
  bool is_write = IsWrite(o);
  auto blocks = static_cast<uint64_t>(Required(o, "lbaCount", 1, int64_t{1} << 48));
  uint64_t commands, duration_ns;
  Limits(o, &commands, &duration_ns);
  Random random{static_cast<uint64_t>(Optional(o, "seed", 1, int64_t{1} << 52, 0x5eed))};

  alignas(4096) static thread_local uint8_t buffer[kBlockBytes];
  if (is_write) memset(buffer, 0xa5, sizeof buffer);
  LatencyHistogram latency;
  uint64_t completed = 0, errors = 0, busy_ns = 0;
  int first_errno = 0;
  const uint64_t cpu_start = NowNs(CLOCK_THREAD_CPUTIME_ID);
  uint64_t now = NowNs();
  const uint64_t start = now;
  const uint64_t deadline = duration_ns ? start + duration_ns : UINT64_MAX;
  while (completed + errors < commands && now < deadline) {
    auto offset = static_cast<off_t>(random.Below(blocks) * kBlockBytes);
    ssize_t n = is_write ? pwrite(fd, buffer, kBlockBytes, offset) : pread(fd, buffer, kBlockBytes, offset);
    uint64_t done = NowNs();
    busy_ns += done - now;  // a synchronous call: all of it is work
    if (n == static_cast<ssize_t>(kBlockBytes)) {
      latency.Add(done - now);
      completed++;
    } else {
      if (first_errno == 0) first_errno = n < 0 ? errno : EIO;
      if (++errors >= 16) break;  // a broken file: stop instead of spinning on errors
    }
    now = done;
  }
  auto out = Napi::Object::New(env);
  out.Set("submitted", static_cast<double>(completed + errors));
  out.Set("completed", static_cast<double>(completed));
  out.Set("elapsedNs", static_cast<double>(NowNs() - start));
  out.Set("clientCpuNs", static_cast<double>(NowNs(CLOCK_THREAD_CPUTIME_ID) - cpu_start));
  out.Set("clientBusyNs", static_cast<double>(busy_ns));
  out.Set("statusErrors", static_cast<double>(errors));
  out.Set("latency", latency.ToJs(env));
  out.Set("timedOut", false);
  if (errors > 0) out.Set("error", std::string(is_write ? "pwrite: " : "pread: ") + strerror(first_errno));
  return out;
}

// --- the machine's core-to-core latency ------------------------------------

// Two threads, pinned to CPUs 0 and 1, bounce one cache line. A queue pair
// between processes is exactly such traffic (doorbell, SQE, CQE), so this
// explains run-to-run swings: a VM's vCPUs may be moved between nearby and
// distant host cores. Bounded to 1 s; both threads spin only that long.
void PinToCpu(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

Napi::Value BenchCoreToCore(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  Napi::Object o = info[0].IsObject() ? info[0].As<Napi::Object>() : Napi::Object::New(env);
  auto rounds = static_cast<uint64_t>(Optional(o, "rounds", 1, 100'000'000, 100'000));
  alignas(64) std::atomic<uint64_t> line{0};
  std::atomic<bool> abort{false};
  cpu_set_t saved;
  bool restore = pthread_getaffinity_np(pthread_self(), sizeof saved, &saved) == 0;
  std::thread peer([&] {
    PinToCpu(1);
    for (uint64_t i = 1; i <= rounds;) {
      if (line.load(std::memory_order_acquire) == 2 * i - 1) {
        line.store(2 * i, std::memory_order_release);
        i++;
      } else if (abort.load(std::memory_order_relaxed)) {
        return;
      } else {
        CpuRelax();
      }
    }
  });
  PinToCpu(0);
  uint64_t done = 0;
  const uint64_t start = NowNs();
  const uint64_t deadline = start + 1'000'000'000ull;
  for (uint64_t i = 1; i <= rounds && !abort.load(std::memory_order_relaxed); i++) {
    line.store(2 * i - 1, std::memory_order_release);
    for (uint32_t spins = 0; line.load(std::memory_order_acquire) != 2 * i;) {
      CpuRelax();
      if (++spins % 1024 == 0 && NowNs() > deadline) {
        abort.store(true, std::memory_order_relaxed);
        break;
      }
    }
    if (!abort.load(std::memory_order_relaxed)) done = i;
  }
  const uint64_t elapsed = NowNs() - start;
  abort.store(true, std::memory_order_relaxed);
  peer.join();
  if (restore) (void)pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
  auto out = Napi::Object::New(env);
  out.Set("rounds", static_cast<double>(done));
  out.Set("roundTripNs", done ? static_cast<double>(elapsed) / static_cast<double>(done) : NAN);
  return out;
}

}  // namespace

void RegisterBenchClient(Napi::Env env, Napi::Object exports) {
  exports.Set("benchQueueRun", Napi::Function::New(env, BenchQueueRun, "benchQueueRun"));
  exports.Set("benchFileRun", Napi::Function::New(env, BenchFileRun, "benchFileRun"));
  exports.Set("benchCoreToCore", Napi::Function::New(env, BenchCoreToCore, "benchCoreToCore"));
}

}  // namespace offpath
