#include "subsystem.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "bar_layout.h"

namespace offpath::emu {

std::unique_ptr<Subsystem> Subsystem::Create(const SubsystemConfig& config, std::string* error) {
  if (config.secondary_controllers > 127) {
    *error = "at most 127 secondary controllers (Secondary Controller List limit)";
    return nullptr;
  }
  if (config.pollers == 0 || config.pollers > 64) {
    *error = "pollers must be 1..64";
    return nullptr;
  }
  std::unique_ptr<Subsystem> subsystem(new Subsystem());
  subsystem->config_ = config;
  std::string code;
  subsystem->store_ = config.shared_store ? config.shared_store : Store::Open(config.store, error, &code);
  if (!subsystem->store_ && !code.empty()) *error = code + ": " + *error;
  if (!subsystem->store_) return nullptr;
  subsystem->flexible_vq_ = config.flexible_vq ? config.flexible_vq : 8 * config.secondary_controllers;
  subsystem->flexible_vi_ = config.flexible_vi ? config.flexible_vi : 4 * config.secondary_controllers;

  uint16_t count = static_cast<uint16_t>(config.secondary_controllers + 1);
  for (uint16_t cntlid = 0; cntlid < count; cntlid++) {
    // Each controller's BAR is a memfd of its own: the host of one VF can
    // map only its own registers and doorbells.
    std::string name = "offpath-bar-" + std::to_string(cntlid);
    int fd = memfd_create(name.c_str(), MFD_CLOEXEC | MFD_ALLOW_SEALING);
    if (fd < 0 || ftruncate(fd, kBarBytes) != 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) != 0) {
      *error = std::string("cannot create a BAR: ") + strerror(errno);
      if (fd >= 0) close(fd);
      return nullptr;
    }
    void* bar = mmap(nullptr, kBarBytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (bar == MAP_FAILED) {
      *error = std::string("cannot map a BAR: ") + strerror(errno);
      close(fd);
      return nullptr;
    }
    subsystem->bar_fds_.push_back(fd);
    subsystem->bars_.push_back(static_cast<uint8_t*>(bar));
    subsystem->controllers_.push_back(
        std::make_unique<Controller>(subsystem.get(), cntlid, fd, static_cast<uint8_t*>(bar)));
  }
  // Controllers are spread over the pollers round-robin; the PF shares the
  // first poller (its admin traffic is rare).
  for (uint16_t p = 0; p < config.pollers; p++) {
    std::vector<Controller*> assigned;
    std::vector<uint8_t*> bars;
    for (uint16_t cntlid = p; cntlid < count; cntlid = static_cast<uint16_t>(cntlid + config.pollers)) {
      assigned.push_back(subsystem->controllers_[cntlid].get());
      bars.push_back(subsystem->bars_[cntlid]);
    }
    subsystem->pollers_.push_back(std::make_unique<Poller>(assigned, bars, config.spin_us));
  }
  if (config.start_pollers)
    for (auto& poller : subsystem->pollers_) poller->Start();
  return subsystem;
}

Subsystem::~Subsystem() {
  Stop();
  controllers_.clear();
  for (size_t i = 0; i < bars_.size(); i++) {
    munmap(bars_[i], kBarBytes);
    close(bar_fds_[i]);
  }
}

void Subsystem::Stop() {
  if (stopped_) return;
  stopped_ = true;
  for (auto& poller : pollers_) poller->Stop();
  if (store_) store_->Flush();
}

int Subsystem::wake_fd(uint16_t cntlid) const {
  return pollers_[cntlid % pollers_.size()]->wake_fd();
}

void Subsystem::NamespacesChanged() {
  namespace_epoch_.fetch_add(1, std::memory_order_acq_rel);
  // Sleeping pollers pick the change up now rather than at their next timeout.
  for (auto& poller : pollers_) poller->Wake();
}

uint32_t Subsystem::assigned_vq() const {
  uint32_t total = 0;
  for (size_t i = 1; i < controllers_.size(); i++) total += controllers_[i]->assigned_vq();
  return total;
}

uint32_t Subsystem::assigned_vi() const {
  uint32_t total = 0;
  for (size_t i = 1; i < controllers_.size(); i++) total += controllers_[i]->assigned_vi();
  return total;
}

}  // namespace offpath::emu
