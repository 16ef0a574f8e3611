// The emulated NVM subsystem: one backing store, one primary controller (the
// PF, cntlid 0) and N secondary controllers (VFs, cntlid 1..N), served by a
// set of poller threads. The Virtualization Management resource pools
// (flexible queue and interrupt resources) live here.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "controller.h"
#include "poller.h"
#include "store.h"

namespace offpath::emu {

struct SubsystemConfig {
  StoreConfig store;
  // When set, the subsystem serves this store (opened elsewhere and shared)
  // instead of opening one from `store`: tests pass an EmuStore in
  // power-loss mode so that they can cut its power under a running emulator.
  std::shared_ptr<Store> shared_store;
  uint16_t secondary_controllers = 4;
  uint16_t pollers = 1;
  uint32_t spin_us = 50;
  // Flexible resources the PF may hand to secondaries (VQ counts the admin
  // queue: a VF needs at least 2 to have one I/O queue pair).
  uint16_t flexible_vq = 0;  // 0: 8 per secondary
  uint16_t flexible_vi = 0;  // 0: 4 per secondary
  uint16_t max_vq_per_secondary = 9;
  uint16_t max_vi_per_secondary = 5;
  // false: the poller threads are created but never started, and whoever
  // owns the subsystem drives Controller::Poll itself (the fuzz harness does,
  // single-threaded and deterministic). Production always starts them.
  bool start_pollers = true;
};

class Subsystem {
 public:
  static std::unique_ptr<Subsystem> Create(const SubsystemConfig& config, std::string* error);
  ~Subsystem();

  Store& store() { return *store_; }
  const SubsystemConfig& config() const { return config_; }
  Controller* controller(uint32_t cntlid) {
    return cntlid < controllers_.size() ? controllers_[cntlid].get() : nullptr;
  }
  size_t controller_count() const { return controllers_.size(); }
  int wake_fd(uint16_t cntlid) const;

  // Bumped on every namespace, attachment or limit change; controllers
  // refresh their cached view when it moves.
  uint64_t namespace_epoch() const { return namespace_epoch_.load(std::memory_order_acquire); }
  // After any change to namespaces, attachments or limits. Each controller
  // notices the new epoch in its next poll, diffs its view and raises a
  // Namespace Attribute Changed event if anything it sees changed.
  void NamespacesChanged();
  // Serialises namespace management, attachment and virtualization changes.
  std::mutex& management_mutex() { return management_mutex_; }

  uint16_t flexible_vq_total() const { return flexible_vq_; }
  uint16_t flexible_vi_total() const { return flexible_vi_; }
  uint32_t assigned_vq() const;
  uint32_t assigned_vi() const;

  void Stop();

 private:
  Subsystem() = default;
  SubsystemConfig config_;
  std::shared_ptr<Store> store_;
  std::vector<std::unique_ptr<Controller>> controllers_;
  std::vector<int> bar_fds_;
  std::vector<uint8_t*> bars_;
  std::vector<std::unique_ptr<Poller>> pollers_;
  std::atomic<uint64_t> namespace_epoch_{1};
  std::mutex management_mutex_;
  uint16_t flexible_vq_ = 0;
  uint16_t flexible_vi_ = 0;
  bool stopped_ = false;
};

}  // namespace offpath::emu
