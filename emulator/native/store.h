// The emulator's backing store: a pool of one or more backing files or block
// devices (or memory) carved into fixed-size chunks, holding namespaces (VSAs)
// whose chunks are allocated on first write (thin provisioning), plus the
// control metadata that must survive the emulator: namespaces, their chunk
// maps, attachments to secondary controllers and per-controller QoS limits.
//
// Metadata lives on the backing store itself, checksummed and written
// crash-consistently, so a restart after kill -9 at any point finds every
// namespace and all data that was written (and, after power loss, all data
// that was flushed).
//
// Thread safety: Read/Write/Deallocate/WriteZeroes/Flush may be called
// concurrently from several poller threads; metadata operations may be called
// from any thread and serialise with each other.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace offpath::emu {

// NVMe completion status, packed as (SCT << 8) | SC; 0 is success. Values
// come from offpath/nvme_spec.h; the controller adds DNR and the phase bit.
using Status = uint16_t;

// One contiguous piece of host memory a command transfers to or from. The
// controller has already checked it lies inside a registered DMA region.
struct Segment {
  uint8_t* data;
  size_t length_bytes;
};

enum class BackendKind { kMemory, kFile, kBlockDevice };

// Test mode: the power-loss simulation (store_power_loss.h). Every pool
// member is wrapped so that the store runs on a simulated volatile write
// cache: a cut drops what was not yet durable (optionally tearing writes)
// and leaves the exact post-power-loss image to reopen.
struct PowerLossConfig {
  bool enabled = false;
  // Drives automatic cuts: when they happen and which volatile writes survive.
  uint64_t seed = 1;
  // Automatic cut right after this many member writes from open (0: none)...
  uint64_t cut_after_writes = 0;
  // ...or after a seeded random 1..N of them (0: none).
  uint64_t cut_within_writes = 0;
  // Whether automatic cuts tear multi-block writes, the probability that a
  // volatile write (or one block of a torn write) survives a cut, and the
  // tear granularity: a power of two from 512 bytes to 1 MiB; 4096 (one
  // page, and at least every namespace block) means no namespace block is
  // ever torn, as Identify's AWUPF of 0 promises.
  bool tear = true;
  double survive = 0.5;
  uint32_t tear_bytes = 4096;
  // Survivors land in issue order rather than a random one.
  bool in_order = false;
  // Volatile data held before the oldest write is written back (made
  // durable), as a real cache's capacity bounds it.
  uint64_t cache_bytes = uint64_t{64} << 20;
  // >= 0: the process _exit()s with this code right after an automatic cut
  // (the power went off for the emulator too). -1: it keeps running, and
  // every later I/O fails.
  int exit_code = -1;
};

// Test mode: injected faults, checked by the data path (store_faults.h).
struct MediaErrorSpec {
  uint32_t nsid = 0;
  uint64_t lba = 0;
  uint64_t blocks = 1;
  bool read = true;   // reads fail with UNRECOVERED_READ_ERROR
  bool write = true;  // Write / Write Zeroes fail with WRITE_FAULT
};

struct FaultConfig {
  std::vector<MediaErrorSpec> media_errors;
  uint32_t delay_us = 0;     // every data command sleeps this long first
  uint32_t delay_nsid = 0;   // ... only commands on this namespace (0: all)
  bool broken_flush = false;  // Flush and FUA succeed without making anything durable
};

class StoreFaults;
class PowerSupply;

struct StoreConfig {
  BackendKind kind = BackendKind::kMemory;
  // kFile / kBlockDevice: the pool members, in order. kFile: a file that
  // does not exist is created with size_bytes (sparse) when create is set.
  // kBlockDevice: block devices (or existing regular files on a filesystem
  // that allows O_DIRECT), never created.
  std::vector<std::string> paths;
  // kMemory: capacity; kFile: size of files created here (existing ones keep theirs).
  uint64_t size_bytes = 0;
  // A power of two from 4 KiB to 1 GiB. 0: whatever the pool was formatted
  // with (1 MiB when formatting); non-zero and different from the pool's:
  // the open is refused.
  uint32_t chunk_bytes = 0;
  // Format the pool if it is blank (member 0's first 4 KiB are zero). A
  // pool with valid metadata is opened, never reformatted; one whose
  // metadata is corrupt, or valid but different (another chunk size, other
  // members), is refused, as is a member holding foreign data.
  bool create = true;
  // Test modes; both off by default.
  PowerLossConfig power_loss;
  FaultConfig faults;
};

struct NamespaceInfo {
  uint32_t nsid;
  uint64_t size_blocks;
  uint32_t block_bytes;
  uint64_t allocated_blocks;  // thin provisioning: blocks backed by chunks
  uint8_t uuid[16];           // stable for the namespace's life (Identify descriptors)
  uint8_t nguid[16];
  std::vector<uint16_t> attached_controllers;  // secondary controller ids
};

struct ControllerLimits {
  uint16_t cntlid;
  uint64_t iops;             // 0 = unlimited
  uint64_t bytes_per_second; // 0 = unlimited
};

struct StoreCounters {
  uint64_t flushes;
  uint64_t chunk_allocations;
  uint64_t chunk_frees;
  uint64_t metadata_commits;      // control block (namespace table, QoS) commits
  uint64_t map_page_writes;       // 4 KiB chunk map page writes (allocations, frees)
  uint64_t dirty_chunk_zeroings;  // freed chunks zeroed before reuse
};

class Store {
 public:
  virtual ~Store() = default;

  // Opens (and with config.create formats) a pool; nullptr with *error set
  // to a message and, if error_code is given, *error_code to an errno name
  // ("ENOENT", "EBUSY", "EINVAL", ...) or a store code: "ECORRUPT" (metadata
  // fails its checksums), "EMISMATCH" (valid metadata that does not match
  // the configuration: other chunk size, wrong or reordered members),
  // "ENOTFORMATTED" (blank pool and create is false), "ENOTBLANK" (a
  // member holds foreign data; the store refuses to format over it).
  static std::unique_ptr<Store> Open(const StoreConfig& config, std::string* error,
                                     std::string* error_code = nullptr);

  virtual uint64_t capacity_bytes() const = 0;
  virtual uint64_t free_bytes() const = 0;
  virtual uint32_t chunk_bytes() const = 0;
  // True when written data may sit in a volatile cache until Flush (file and
  // block backends: the page cache / device cache). Reported as Identify VWC.
  virtual bool volatile_write_cache() const = 0;

  // Namespace management. block_bytes is 512 or 4096. nsids are 1..kMaxNamespaces.
  virtual Status CreateNamespace(uint64_t size_blocks, uint32_t block_bytes, uint32_t* nsid) = 0;
  virtual Status DeleteNamespace(uint32_t nsid) = 0;
  virtual Status ResizeNamespace(uint32_t nsid, uint64_t size_blocks) = 0;
  virtual bool GetNamespace(uint32_t nsid, NamespaceInfo* info) const = 0;
  virtual std::vector<NamespaceInfo> Namespaces() const = 0;
  virtual Status Attach(uint32_t nsid, uint16_t cntlid) = 0;
  virtual Status Detach(uint32_t nsid, uint16_t cntlid) = 0;
  virtual Status SetLimits(const ControllerLimits& limits) = 0;
  virtual std::vector<ControllerLimits> Limits() const = 0;

  // Data. The LBA range is checked against the namespace (LBA_OUT_OF_RANGE);
  // the segments together hold exactly blocks * block_bytes.
  // Reading blocks never written (or deallocated) returns zeroes.
  virtual Status Read(uint32_t nsid, uint64_t lba, uint32_t blocks, const Segment* segments,
                      size_t segment_count) = 0;
  // fua: durable on the backing store before returning.
  virtual Status Write(uint32_t nsid, uint64_t lba, uint32_t blocks, const Segment* segments,
                       size_t segment_count, bool fua) = 0;
  // Deallocated blocks read as zeroes; whole chunks go back to the pool.
  virtual Status Deallocate(uint32_t nsid, uint64_t lba, uint64_t blocks) = 0;
  virtual Status WriteZeroes(uint32_t nsid, uint64_t lba, uint64_t blocks, bool fua) = 0;
  // Makes everything written so far (data and metadata) durable.
  virtual Status Flush() = 0;

  virtual StoreCounters counters() const = 0;

  // Test hooks (docs/emulator-store.md, "Power-loss simulation"). The
  // injected faults (always present on a real store), and the power supply
  // of the power-loss simulation (nullptr unless config.power_loss.enabled).
  virtual StoreFaults* faults() { return nullptr; }
  virtual std::shared_ptr<PowerSupply> power_supply() const { return nullptr; }
  // True once a simulated power cut happened: every later I/O fails. A
  // controller should then report Controller Fatal Status.
  virtual bool power_lost() const { return false; }
};

constexpr uint32_t kMaxNamespaces = 1024;

}  // namespace offpath::emu
