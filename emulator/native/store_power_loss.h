// The power-loss simulation, a test mode of the store (docs/emulator-store.md,
// "Power-loss simulation and fault injection").
//
// Every pool member is wrapped in a PowerLossMember that sees each Write and
// Sync (the store's one write path and its durability points) and keeps, per
// tear block (tear_bytes, 4 KiB by default):
//   - an undo image: the durable content of every block changed by a write
//     that is not yet durable (captured before the first such write);
//   - the pending (volatile) writes themselves, in order, with their data.
// Writes go through to the real member at once, so reads need no overlay.
// A block becomes durable when a Sync of its member completes, or when a
// write with `durable` set (FUA, RWF_DSYNC) covers any part of it — the whole
// block is then on stable storage, as a page or sector is. A cut puts every
// undo image back (the member then holds exactly the durable state), applies
// a seeded random subset of the pending writes in a random order (a write
// cache may have written any dirty blocks back before the power failed),
// tearing some multi-block writes at block granularity, syncs the members and
// detaches them: the store above sees every later I/O fail, and the bare
// members are the image to reopen.
//
// All member I/O of a store in this mode is serialised by the supply's lock:
// it is a test mode.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <shared_mutex>
#include <string>
#include <vector>

#include "backend_member.h"
#include "store.h"

namespace offpath::emu {

struct CutOptions {
  uint64_t seed = 1;
  bool tear = true;
  double survive = 0.5;  // probability a pending write (or one torn block of it) survives
  // The survivors land in the order they were issued instead of a random
  // one (with survive 1 and no tear: exactly what a process kill leaves).
  bool in_order = false;
};

struct CutReport {
  uint64_t seed = 0;
  bool automatic = false;        // fired by cut_after_writes / cut_within_writes / ArmCut
  uint64_t at_write = 0;         // member writes since open when the power went off
  uint64_t pending_writes = 0;   // volatile writes the cache held
  uint64_t applied = 0;          // of those, survived whole
  uint64_t torn = 0;             // survived in part (some tear blocks only)
  uint64_t dropped = 0;          // lost entirely
  uint64_t restored_blocks = 0;  // tear blocks put back to their durable content
};

struct PowerLossStats {
  bool cut = false;
  uint32_t tear_bytes = 0;
  uint64_t writes = 0;           // member writes since open
  uint64_t volatile_writes = 0;
  uint64_t durable_writes = 0;   // FUA / RWF_DSYNC writes
  uint64_t syncs = 0;
  uint64_t written_back = 0;     // pending writes made durable by the cache's capacity
  uint64_t pending_writes = 0;   // volatile now
  uint64_t pending_bytes = 0;
  uint64_t dirty_blocks = 0;     // tear blocks whose durable content differs from what reads return
  uint64_t cut_at = 0;           // armed: the power goes off after write number cut_at (0: not armed)
  bool has_cut = false;
  CutReport last_cut;
};

class PowerLossMember;

class PowerSupply : public std::enable_shared_from_this<PowerSupply> {
 public:
  explicit PowerSupply(const PowerLossConfig& config);
  ~PowerSupply();
  PowerSupply(const PowerSupply&) = delete;
  PowerSupply& operator=(const PowerSupply&) = delete;

  // Wraps one member; call in pool order (the image keeps that order).
  std::unique_ptr<BackendMember> Wrap(std::unique_ptr<BackendMember> inner);

  // Cuts the power now. False (changing nothing) when it is already off.
  bool Cut(const CutOptions& options, CutReport* report = nullptr);
  // The options automatic cuts use (seeded from the config).
  CutOptions AutomaticCutOptions() const;
  // The power goes off right after `after_writes` more member writes (0 disarms).
  void ArmCut(uint64_t after_writes);
  bool cut() const { return cut_flag_.load(std::memory_order_acquire); }
  PowerLossStats stats() const;
  // After a cut: the bare members, in pool order, holding exactly the
  // durable state plus the writes that survived. Empty before a cut and once taken.
  std::vector<std::unique_ptr<BackendMember>> TakeImage();

 private:
  friend class PowerLossMember;
  bool CutLocked(const CutOptions& options, bool automatic, CutReport* report);
  void Unregister(PowerLossMember* member);

  const PowerLossConfig config_;
  mutable std::shared_mutex mutex_;
  std::vector<PowerLossMember*> members_;  // live wrappers, pool order
  std::vector<std::unique_ptr<BackendMember>> image_;
  std::atomic<bool> cut_flag_{false};
  uint64_t sequence_ = 0;  // numbers writes across members
  uint64_t writes_ = 0;
  uint64_t cut_at_ = 0;
  uint64_t volatile_writes_ = 0;
  uint64_t durable_writes_ = 0;
  uint64_t syncs_ = 0;
  uint64_t written_back_ = 0;
  bool has_cut_ = false;
  CutReport last_cut_;
};

// Opens a store like Store::Open, or, with a non-empty image, on members a
// cut left behind (config.kind says what they are; paths and create are
// ignored). When config.power_loss is enabled *supply receives the new
// power supply, even when the open fails: a cut during the open (a format
// or a recovery interrupted) leaves its image there.
std::unique_ptr<Store> OpenStoreForTest(const StoreConfig& config, std::vector<std::unique_ptr<BackendMember>> image,
                                        std::shared_ptr<PowerSupply>* supply, std::string* error,
                                        std::string* error_code);

}  // namespace offpath::emu
