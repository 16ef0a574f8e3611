// One NVMe controller of the emulated subsystem: the PF (cntlid 0) or a
// secondary controller / VF (cntlid >= 1). It owns its BAR (registers and
// doorbells in shared memory), its queues and its DMA region table, and it
// executes commands when a poller thread calls Poll().
//
// Locking: Poll() runs on one poller thread and holds mutex_ while it works;
// the JS thread takes the same mutex to register memory or reset the
// controller, so the poller never sees a half-changed region table.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "bar_layout.h"
#include "data_pointer.h"
#include "dma_regions.h"
#include "store_status.h"
#include "offpath/nvme_spec.h"
#include "qos.h"
#include "store.h"

namespace offpath::emu {

class Subsystem;

struct SubmissionQueue {
  bool exists = false;
  uint16_t cqid = 0;
  uint32_t entries = 0;
  uint32_t head = 0;
  uint8_t* base = nullptr;
  uint64_t iova = 0;
  uint32_t bad_tail = UINT32_MAX;  // last invalid doorbell value reported
};

struct CompletionQueue {
  bool exists = false;
  uint32_t entries = 0;
  uint32_t tail = 0;
  uint32_t head = 0;
  uint8_t phase = 1;
  uint8_t* base = nullptr;
  uint64_t iova = 0;
  bool interrupts = false;
  uint16_t vector = 0;
  uint32_t sq_count = 0;           // SQs that complete here (blocks deletion)
  uint32_t unsignalled = 0;        // completions posted since the last interrupt
  std::chrono::steady_clock::time_point first_unsignalled{};
  uint32_t bad_head = UINT32_MAX;
};

// What the host sees in the Error Information log (newest first).
struct ErrorEntry {
  uint64_t error_count;
  uint16_t sqid;
  uint16_t cid;
  uint16_t status;  // without the phase bit
  uint16_t parameter_location;
  uint64_t lba;
  uint32_t nsid;
};

// A namespace as one controller sees it, cached from the store so the I/O
// path needs no lock and no allocation to validate NSID and LBA range.
struct NamespaceView {
  uint32_t nsid;
  uint64_t size_blocks;
  uint32_t block_bytes;
  uint8_t block_shift;
};

struct ControllerStats {
  uint64_t commands = 0;
  uint64_t admin_commands = 0;
  uint64_t read_commands = 0;
  uint64_t write_commands = 0;
  uint64_t read_bytes = 0;
  uint64_t written_bytes = 0;
  uint64_t media_errors = 0;
  uint64_t invalid_doorbell_writes = 0;
  uint64_t busy_ns = 0;
  uint64_t resets = 0;
  uint64_t throttled_rounds = 0;
};

class Controller {
 public:
  Controller(Subsystem* subsystem, uint16_t cntlid, int bar_fd, uint8_t* bar);
  ~Controller();
  Controller(const Controller&) = delete;
  Controller& operator=(const Controller&) = delete;

  uint16_t cntlid() const { return cntlid_; }
  bool primary() const { return cntlid_ == 0; }
  int bar_fd() const { return bar_fd_; }

  // Runs one round: register changes, then up to a batch of commands from
  // every SQ. Returns the number of commands executed (0 = idle). Sets
  // *next_deadline when throttled work must be retried later.
  uint32_t Poll(std::chrono::steady_clock::time_point now,
                std::chrono::steady_clock::time_point* next_deadline);
  // True when a doorbell or CC differs from what Poll() last acted on:
  // the poller's last check before it sleeps.
  bool HasPendingWork();
  // Delivers interrupts that coalescing held back; called before sleeping.
  void FlushInterrupts();

  // Host-facing configuration, called from the JS thread.
  std::string MapDma(uint64_t iova, uint64_t length_bytes, int fd, std::string* error);
  std::string UnmapDma(uint64_t iova, std::string* error);
  std::string SetInterruptFd(uint16_t vector, int fd, std::string* error);
  // The host went away (its connection closed): reset like a function-level
  // reset, forget its memory and interrupt fds.
  void DetachHost();

  // Secondary controller state, driven by Virtualization Management on the PF.
  bool online() const { return online_.load(std::memory_order_acquire); }
  void SetOnline(bool online);
  // Test hook: the next poll round sets CSTS.CFS (a controller fatal status).
  void InjectFatal() { fatal_requested_.store(true, std::memory_order_release); }

  // A read-only VSIC (a read-only capability): every command that would
  // change data fails with Namespace Is Write Protected.
  bool read_only() const { return read_only_.load(std::memory_order_acquire); }
  void SetReadOnly(bool read_only) { read_only_.store(read_only, std::memory_order_release); }
  uint16_t assigned_vq() const { return assigned_vq_; }
  uint16_t assigned_vi() const { return assigned_vi_; }
  void SetAssigned(uint16_t vq, uint16_t vi) {
    std::lock_guard<std::mutex> lock(mutex_);
    assigned_vq_ = vq;
    assigned_vi_ = vi;
  }

  ControllerStats stats();
  std::vector<std::pair<uint16_t, uint64_t>> rejections();

 private:
  friend class AdminCommands;
  friend class IoCommands;

 public:
  // Queue entries the controller accepts (CAP.MQES + 1).
  static constexpr uint32_t kMaxQueueEntries = 1024;

  // One fetched SQE (copied out of the ring) and the completion it earns.
  struct Command {
    uint8_t bytes[64];
    uint16_t sqid;
  };
  struct Completion {
    uint32_t dw0 = 0;
    uint32_t dw1 = 0;
    Status status = status::kSuccess;
    bool dnr = false;
    uint16_t parameter_location = 0xffff;  // SQE byte offset of the field at fault
    uint64_t lba = 0;
    bool deferred = false;                 // AER: completed later
  };


 private:

  uint32_t ReadRegister32(uint32_t offset) const;
  uint64_t ReadRegister64(uint32_t offset) const;
  void WriteRegister32(uint32_t offset, uint32_t value);
  void WriteRegister64(uint32_t offset, uint64_t value);
  void InitRegisters();
  void HandleControllerConfiguration(uint32_t cc);
  void Enable(uint32_t cc);
  void Reset();
  void SetFatal();

  // The command's data pointer as host memory (PRP, or SGL on I/O queues).
  Status MapData(const offpath::nvme::Sqe& sqe, uint64_t length_bytes, bool admin, Transfer* transfer);

  uint32_t PollQueue(uint16_t sqid, std::chrono::steady_clock::time_point now, bool* throttled);
  void Execute(const Command& command);
  void PostCompletion(uint16_t sqid, uint16_t cid, const Completion& completion, uint16_t cqid);
  uint32_t CompletionSpace(uint16_t cqid);
  void SignalInterrupt(CompletionQueue& cq);
  void RecordError(uint16_t sqid, uint16_t cid, const Completion& completion, uint32_t nsid);
  void PostAsyncEvent(offpath::nvme::AsyncEventType type, uint8_t info, offpath::nvme::LogPageId log_page);
  void PostInvalidDoorbellEvent();
  void DeliverAsyncEvents();
  void RefreshNamespaces();
  const NamespaceView* FindNamespace(uint32_t nsid) const;

  Subsystem* subsystem_;
  const uint16_t cntlid_;
  const int bar_fd_;
  uint8_t* const bar_;

  std::mutex mutex_;
  DmaRegionTable regions_;
  std::array<SubmissionQueue, kMaxQueueId + 1> sqs_{};
  std::array<CompletionQueue, kMaxQueueId + 1> cqs_{};
  std::vector<int> interrupt_fds_;  // by vector, -1 = none
  uint32_t last_cc_ = 0;
  bool enabled_ = false;
  bool fatal_ = false;
  bool shut_down_ = false;

  // Features.
  uint16_t granted_sq_ = 0;  // I/O queues granted by Set Features (Number of Queues)
  uint16_t granted_cq_ = 0;
  bool volatile_write_cache_enabled_ = true;
  uint8_t coalescing_threshold_ = 0;  // zero-based count
  uint8_t coalescing_time_100us_ = 0;
  uint32_t async_event_config_ = 0x100;  // namespace attribute notices on
  uint16_t temperature_threshold_kelvin_ = 0x157;
  uint32_t arbitration_ = 0;
  uint32_t power_state_ = 0;
  uint32_t vector_coalescing_disabled_ = 0;  // bit per vector (first 32)

  // Asynchronous events.
  std::deque<uint16_t> aer_cids_;
  std::deque<uint32_t> pending_events_;  // completion dw0 values
  uint32_t masked_event_types_ = 0;      // types awaiting a log page read
  std::vector<uint32_t> changed_namespaces_;

  // Error log and counters.
  std::deque<ErrorEntry> error_log_;
  uint64_t error_count_ = 0;
  std::unordered_map<uint16_t, uint64_t> rejections_;
  ControllerStats stats_;

  // Scratch space reused by every command (no allocation per command).
  Transfer transfer_;
  alignas(64) uint8_t page_[4096];
  std::vector<uint8_t> compare_buffer_ = std::vector<uint8_t>(kMaxTransferBytes);
  std::chrono::steady_clock::time_point created_ = std::chrono::steady_clock::now();

  // Namespaces attached to this controller (cache of the store).
  uint64_t namespace_epoch_ = UINT64_MAX;
  std::vector<NamespaceView> namespaces_;

  // Secondary controller resources.
  std::atomic<bool> online_{false};
  std::atomic<bool> read_only_{false};
  std::atomic<bool> fatal_requested_{false};
  uint16_t assigned_vq_ = 0;
  uint16_t assigned_vi_ = 0;

  TokenBucket iops_bucket_;
  TokenBucket bytes_bucket_;
  uint64_t limits_epoch_ = UINT64_MAX;
};

}  // namespace offpath::emu
