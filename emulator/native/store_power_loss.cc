// The power-loss simulation: PowerLossMember wraps a pool member and tracks
// what a write cache would hold; PowerSupply cuts the power for all members
// of a store at once. See store_power_loss.h for the model.
#include "store_power_loss.h"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <deque>
#include <mutex>
#include <unordered_map>
#include <utility>

namespace offpath::emu {
namespace {

// splitmix64: small, seedable and the same on every platform (the standard
// distributions are not), so a seed replays exactly.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double Unit() { return static_cast<double>(Next() >> 11) * (1.0 / 9007199254740992.0); }
  uint64_t Below(uint64_t bound) { return bound == 0 ? 0 : Next() % bound; }

 private:
  uint64_t state_;
};

bool AllZero(const uint8_t* data, size_t length) {
  for (size_t i = 0; i < length; ++i)
    if (data[i] != 0) return false;
  return true;
}

int WriteZeroes(BackendMember* member, uint64_t offset, uint64_t length) {
  MemberWrite write;
  write.offset_bytes = offset;
  write.length_bytes = length;
  return member->Write(write);
}

}  // namespace

class PowerLossMember final : public BackendMember {
 public:
  PowerLossMember(std::shared_ptr<PowerSupply> supply, std::unique_ptr<BackendMember> inner)
      : supply_(std::move(supply)),
        inner_(std::move(inner)),
        path_(inner_->path()),
        size_bytes_(inner_->size_bytes()),
        block_bytes_(supply_->config_.tear_bytes) {}

  ~PowerLossMember() override { supply_->Unregister(this); }

  const std::string& path() const override { return path_; }
  uint64_t size_bytes() const override { return size_bytes_; }
  bool volatile_cache() const override { return true; }

  int Read(uint64_t offset_bytes, const struct iovec* iov, int iov_count, uint64_t length_bytes) override {
    std::shared_lock<std::shared_mutex> lock(supply_->mutex_);
    if (!inner_) return -EIO;
    return inner_->Read(offset_bytes, iov, iov_count, length_bytes);
  }

  int Write(const MemberWrite& write) override {
    PowerSupply& supply = *supply_;
    std::unique_lock<std::shared_mutex> lock(supply.mutex_);
    if (!inner_) return -EIO;
    if (write.length_bytes == 0) return 0;
    if (write.offset_bytes > size_bytes_ || write.length_bytes > size_bytes_ - write.offset_bytes) return -EINVAL;
    if (!write.durable) {
      int rc = CaptureUndo(write);
      if (rc != 0) return rc;
    }
    int rc = inner_->Write(write);
    if (rc != 0) return rc;  // nothing recorded: the undo images still restore the durable state
    uint64_t sequence = ++supply.sequence_;
    ++supply.writes_;
    if (write.durable) {
      ++supply.durable_writes_;
      MarkDurable(write.offset_bytes, write.length_bytes, sequence);
    } else {
      ++supply.volatile_writes_;
      Record(write, sequence);
    }
    if (supply.cut_at_ != 0 && supply.writes_ >= supply.cut_at_) {
      supply.CutLocked(supply.AutomaticCutOptions(), true, nullptr);
      if (supply.config_.exit_code >= 0) _exit(supply.config_.exit_code);
    }
    return 0;
  }

  int Sync() override {
    std::unique_lock<std::shared_mutex> lock(supply_->mutex_);
    if (!inner_) return -EIO;
    int rc = inner_->Sync();
    if (rc != 0) return rc;
    ++supply_->syncs_;
    ClearLocked();
    return 0;
  }

 private:
  friend class PowerSupply;

  struct Pending {
    uint64_t offset;
    uint64_t length;
    uint64_t sequence;
    bool zero;
    std::vector<uint8_t> data;  // empty for zeroing
  };

  uint64_t BlockLength(uint64_t block) const {
    return std::min<uint64_t>(block_bytes_, size_bytes_ - block * block_bytes_);
  }
  uint64_t FirstBlock(uint64_t offset) const { return offset / block_bytes_; }
  uint64_t LastBlock(uint64_t offset, uint64_t length) const { return (offset + length - 1) / block_bytes_; }

  // Before the first not-yet-durable change to a block, keep its durable
  // content (which is what it holds now: a block with no undo image has had
  // no change since it was last durable).
  int CaptureUndo(const MemberWrite& write) {
    const bool zeroing = write.iov == nullptr;
    for (uint64_t block = FirstBlock(write.offset_bytes),
                  last = LastBlock(write.offset_bytes, write.length_bytes);
         block <= last; ++block) {
      if (undo_.count(block) != 0) continue;
      uint64_t length = BlockLength(block);
      scratch_.resize(length);
      struct iovec iov = {scratch_.data(), length};
      int rc = inner_->Read(block * block_bytes_, &iov, 1, length);
      if (rc != 0) return rc;
      bool zero = AllZero(scratch_.data(), length);
      // Zeroing a block of zeroes changes nothing there: no undo needed.
      if (zero && zeroing) continue;
      undo_.emplace(block, zero ? std::vector<uint8_t>() : scratch_);
    }
    return 0;
  }

  void Record(const MemberWrite& write, uint64_t sequence) {
    Pending pending{write.offset_bytes, write.length_bytes, sequence, write.iov == nullptr, {}};
    if (!pending.zero) {
      pending.data.resize(write.length_bytes);
      uint64_t at = 0;
      for (int i = 0; i < write.iov_count && at < write.length_bytes; ++i) {
        uint64_t piece = std::min<uint64_t>(write.iov[i].iov_len, write.length_bytes - at);
        memcpy(pending.data.data() + at, write.iov[i].iov_base, piece);
        at += piece;
      }
      pending_bytes_ += write.length_bytes;
    }
    for (uint64_t block = FirstBlock(write.offset_bytes), last = LastBlock(write.offset_bytes, write.length_bytes);
         block <= last; ++block)
      ++pending_per_block_[block];
    pending_.push_back(std::move(pending));
    while (pending_bytes_ > supply_->config_.cache_bytes && !pending_.empty()) WriteBackOldest();
  }

  // A durable write leaves every block it touches durable as it is now;
  // pending writes older than it can no longer reappear there.
  void MarkDurable(uint64_t offset, uint64_t length, uint64_t sequence) {
    for (uint64_t block = FirstBlock(offset), last = LastBlock(offset, length); block <= last; ++block) {
      undo_.erase(block);
      if (!pending_.empty()) durable_since_[block] = sequence;
    }
  }

  bool Superseded(uint64_t block, uint64_t sequence) const {
    auto found = durable_since_.find(block);
    return found != durable_since_.end() && found->second > sequence;
  }

  // The cache is full: the oldest pending write reaches the medium, so it
  // becomes part of the durable content of its blocks.
  void WriteBackOldest() {
    const Pending& oldest = pending_.front();
    for (uint64_t block = FirstBlock(oldest.offset), last = LastBlock(oldest.offset, oldest.length);
         block <= last; ++block) {
      // Once no pending write touches a block, it is durable as it reads:
      // its undo image is no longer needed (this bounds them as well).
      auto count = pending_per_block_.find(block);
      if (--count->second == 0) {
        pending_per_block_.erase(count);
        undo_.erase(block);
        continue;
      }
      if (Superseded(block, oldest.sequence)) continue;
      auto found = undo_.find(block);
      if (found == undo_.end()) continue;  // zeroing zeroes: nothing to write back
      std::vector<uint8_t>& image = found->second;
      uint64_t length = BlockLength(block);
      if (image.empty()) image.assign(length, 0);
      uint64_t start = std::max(oldest.offset, block * block_bytes_);
      uint64_t end = std::min(oldest.offset + oldest.length, block * block_bytes_ + length);
      uint8_t* target = image.data() + (start - block * block_bytes_);
      if (oldest.zero)
        memset(target, 0, end - start);
      else
        memcpy(target, oldest.data.data() + (start - oldest.offset), end - start);
    }
    if (!oldest.zero) pending_bytes_ -= oldest.length;
    pending_.pop_front();
    ++supply_->written_back_;
  }

  // Puts the durable content back: the member then holds exactly the
  // durable state.
  uint64_t RestoreLocked() {
    std::vector<uint64_t> blocks;
    blocks.reserve(undo_.size());
    for (const auto& entry : undo_) blocks.push_back(entry.first);
    std::sort(blocks.begin(), blocks.end());
    size_t i = 0;
    while (i < blocks.size()) {
      const std::vector<uint8_t>& image = undo_[blocks[i]];
      if (!image.empty()) {
        (void)WriteAt(inner_.get(), blocks[i] * block_bytes_, image.data(), image.size());
        ++i;
        continue;
      }
      size_t end = i + 1;  // a run of blocks whose durable content is zeroes
      while (end < blocks.size() && blocks[end] == blocks[end - 1] + 1 && undo_[blocks[end]].empty()) ++end;
      uint64_t last = blocks[end - 1];
      (void)WriteZeroes(inner_.get(), blocks[i] * block_bytes_,
                        last * block_bytes_ + BlockLength(last) - blocks[i] * block_bytes_);
      i = end;
    }
    return blocks.size();
  }

  // Applies the tear blocks of one pending write that survived (keep empty:
  // all of them), skipping those a later durable write superseded.
  void ApplyLocked(const Pending& pending, const std::vector<bool>& keep) {
    uint64_t first = FirstBlock(pending.offset);
    uint64_t last = LastBlock(pending.offset, pending.length);
    uint64_t block = first;
    while (block <= last) {
      auto wanted = [&](uint64_t b) {
        return (keep.empty() || keep[b - first]) && !Superseded(b, pending.sequence);
      };
      if (!wanted(block)) {
        ++block;
        continue;
      }
      uint64_t run_end = block + 1;
      while (run_end <= last && wanted(run_end)) ++run_end;
      uint64_t start = std::max(pending.offset, block * block_bytes_);
      uint64_t end = std::min(pending.offset + pending.length, run_end * block_bytes_);
      if (pending.zero)
        (void)WriteZeroes(inner_.get(), start, end - start);
      else
        (void)WriteAt(inner_.get(), start, pending.data.data() + (start - pending.offset), end - start);
      block = run_end;
    }
  }

  void ClearLocked() {
    undo_.clear();
    pending_.clear();
    pending_per_block_.clear();
    durable_since_.clear();
    pending_bytes_ = 0;
  }

  std::shared_ptr<PowerSupply> supply_;
  std::unique_ptr<BackendMember> inner_;  // nullptr once the power is off
  const std::string path_;
  const uint64_t size_bytes_;
  const uint64_t block_bytes_;
  // Block -> its durable content (empty: zeroes), for blocks changed since.
  std::unordered_map<uint64_t, std::vector<uint8_t>> undo_;
  std::deque<Pending> pending_;
  std::unordered_map<uint64_t, uint32_t> pending_per_block_;  // pending writes touching each block
  // Block -> sequence of the last durable write covering it (kept only
  // while writes are pending).
  std::unordered_map<uint64_t, uint64_t> durable_since_;
  uint64_t pending_bytes_ = 0;
  std::vector<uint8_t> scratch_;
};

PowerSupply::PowerSupply(const PowerLossConfig& config) : config_(config) {
  if (config_.cut_after_writes != 0) {
    cut_at_ = config_.cut_after_writes;
  } else if (config_.cut_within_writes != 0) {
    Rng rng(config_.seed ^ 0x43555441545752ull);
    cut_at_ = 1 + rng.Below(config_.cut_within_writes);
  }
}

PowerSupply::~PowerSupply() = default;

std::unique_ptr<BackendMember> PowerSupply::Wrap(std::unique_ptr<BackendMember> inner) {
  auto member = std::make_unique<PowerLossMember>(shared_from_this(), std::move(inner));
  std::unique_lock<std::shared_mutex> lock(mutex_);
  members_.push_back(member.get());
  return member;
}

void PowerSupply::Unregister(PowerLossMember* member) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  members_.erase(std::remove(members_.begin(), members_.end(), member), members_.end());
}

CutOptions PowerSupply::AutomaticCutOptions() const {
  CutOptions options;
  options.seed = (config_.seed ^ 0x504f574552ull) & ((uint64_t{1} << 53) - 1);  // exact as a JS number
  options.tear = config_.tear;
  options.survive = config_.survive;
  options.in_order = config_.in_order;
  return options;
}

bool PowerSupply::Cut(const CutOptions& options, CutReport* report) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  return CutLocked(options, false, report);
}

bool PowerSupply::CutLocked(const CutOptions& options, bool automatic, CutReport* report) {
  if (cut_flag_.load()) return false;
  CutReport result;
  result.seed = options.seed;
  result.automatic = automatic;
  result.at_write = writes_;
  // 1. Every member back to its durable state.
  for (PowerLossMember* member : members_) result.restored_blocks += member->RestoreLocked();
  // 2. Which pending writes survive, and in what order they land.
  struct Choice {
    PowerLossMember* member;
    const PowerLossMember::Pending* pending;
    std::vector<bool> keep;  // empty: whole
  };
  std::vector<Choice> chosen;
  Rng rng(options.seed);
  for (PowerLossMember* member : members_) {
    for (const auto& pending : member->pending_) {
      ++result.pending_writes;
      uint64_t blocks = member->LastBlock(pending.offset, pending.length) - member->FirstBlock(pending.offset) + 1;
      if (options.tear && blocks > 1 && rng.Unit() < 1.0 / 3) {
        std::vector<bool> keep(blocks);
        uint64_t kept = 0;
        for (uint64_t i = 0; i < blocks; ++i) {
          keep[i] = rng.Unit() < options.survive;
          kept += keep[i] ? 1 : 0;
        }
        if (kept == 0) {
          ++result.dropped;
        } else if (kept == blocks) {
          ++result.applied;
          chosen.push_back({member, &pending, {}});
        } else {
          ++result.torn;
          chosen.push_back({member, &pending, std::move(keep)});
        }
      } else if (rng.Unit() < options.survive) {
        ++result.applied;
        chosen.push_back({member, &pending, {}});
      } else {
        ++result.dropped;
      }
    }
  }
  if (options.in_order) {
    std::stable_sort(chosen.begin(), chosen.end(),
                     [](const Choice& a, const Choice& b) { return a.pending->sequence < b.pending->sequence; });
  } else {
    for (size_t i = chosen.size(); i > 1; --i) std::swap(chosen[i - 1], chosen[rng.Below(i)]);
  }
  for (const Choice& choice : chosen) choice.member->ApplyLocked(*choice.pending, choice.keep);
  // 3. What is on the members now is all there is: make it stick, and take
  // the members away from the store.
  for (PowerLossMember* member : members_) {
    (void)member->inner_->Sync();
    member->ClearLocked();
    image_.push_back(std::move(member->inner_));
  }
  cut_at_ = 0;
  has_cut_ = true;
  last_cut_ = result;
  cut_flag_.store(true, std::memory_order_release);
  if (report != nullptr) *report = result;
  return true;
}

void PowerSupply::ArmCut(uint64_t after_writes) {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  cut_at_ = after_writes == 0 ? 0 : writes_ + after_writes;
}

PowerLossStats PowerSupply::stats() const {
  std::shared_lock<std::shared_mutex> lock(mutex_);
  PowerLossStats stats;
  stats.cut = cut_flag_.load();
  stats.tear_bytes = config_.tear_bytes;
  stats.writes = writes_;
  stats.volatile_writes = volatile_writes_;
  stats.durable_writes = durable_writes_;
  stats.syncs = syncs_;
  stats.written_back = written_back_;
  stats.cut_at = cut_at_;
  for (const PowerLossMember* member : members_) {
    stats.pending_writes += member->pending_.size();
    stats.pending_bytes += member->pending_bytes_;
    stats.dirty_blocks += member->undo_.size();
  }
  stats.has_cut = has_cut_;
  stats.last_cut = last_cut_;
  return stats;
}

std::vector<std::unique_ptr<BackendMember>> PowerSupply::TakeImage() {
  std::unique_lock<std::shared_mutex> lock(mutex_);
  std::vector<std::unique_ptr<BackendMember>> image = std::move(image_);
  image_.clear();
  return image;
}

}  // namespace offpath::emu
