// The block member: a block device (or an existing regular file, for tests
// on filesystems that allow it) opened O_DIRECT, so data moves between the
// host's memory and the device with no page cache copy in between.
//
// O_DIRECT demands that file offsets, lengths and memory addresses be
// aligned (to the logical block size, or what statx reports). The store's
// offsets are aligned whenever a namespace's block size is at least the
// device's; host memory segments often are not. Anything misaligned goes
// through a per-thread aligned bounce buffer, and a write that covers only
// part of a device block becomes read-modify-write of that block.
//
// Read-modify-write must not lose a concurrent write to the same device
// block, so writes take a lock on the 1 MiB regions they touch: shared for
// plain writes (they never conflict with each other), exclusive for
// read-modify-write.
#include <fcntl.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <shared_mutex>

#include "backend_io.h"
#include "backend_member.h"

namespace offpath::emu {
namespace {

constexpr int kStripeCount = 64;
constexpr int kRegionShift = 20;  // 1 MiB lock regions

int SyncFd(int fd) {
  while (fdatasync(fd) != 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

// A growable aligned buffer per thread: poller threads reuse theirs instead
// of allocating on every misaligned I/O.
struct BounceBuffer {
  uint8_t* data = nullptr;
  size_t capacity_bytes = 0;
  ~BounceBuffer() { free(data); }

  uint8_t* Get(size_t length_bytes, size_t align_bytes) {
    if (length_bytes <= capacity_bytes) return data;
    free(data);
    data = nullptr;
    capacity_bytes = 0;
    void* memory = nullptr;
    size_t rounded = (length_bytes + 65535) & ~size_t{65535};
    if (posix_memalign(&memory, std::max<size_t>(align_bytes, 4096), rounded) != 0) return nullptr;
    data = static_cast<uint8_t*>(memory);
    capacity_bytes = rounded;
    return data;
  }
};

thread_local BounceBuffer bounce;

void CopyFromSegments(uint8_t* target, const struct iovec* iov, int iov_count, uint64_t length) {
  for (int i = 0; i < iov_count && length > 0; ++i) {
    size_t piece = std::min<uint64_t>(iov[i].iov_len, length);
    memcpy(target, iov[i].iov_base, piece);
    target += piece;
    length -= piece;
  }
}

void CopyToSegments(const struct iovec* iov, int iov_count, const uint8_t* source, uint64_t length) {
  for (int i = 0; i < iov_count && length > 0; ++i) {
    size_t piece = std::min<uint64_t>(iov[i].iov_len, length);
    memcpy(iov[i].iov_base, source, piece);
    source += piece;
    length -= piece;
  }
}

class BlockMember final : public BackendMember {
 public:
  BlockMember(int fd, std::string path, uint64_t size_bytes, uint32_t block_bytes,
              uint32_t memory_align_bytes)
      : fd_(fd),
        path_(std::move(path)),
        size_bytes_(size_bytes),
        block_bytes_(block_bytes),
        memory_align_bytes_(memory_align_bytes) {}
  ~BlockMember() override { close(fd_); }

  const std::string& path() const override { return path_; }
  uint64_t size_bytes() const override { return size_bytes_; }
  bool volatile_cache() const override { return true; }

  int Read(uint64_t offset_bytes, const struct iovec* iov, int iov_count,
           uint64_t length_bytes) override {
    if (length_bytes == 0) return 0;
    if (RangeAligned(offset_bytes, length_bytes) && SegmentsAligned(iov, iov_count))
      return PreadvFully(fd_, iov, iov_count, offset_bytes, length_bytes);
    uint64_t start = AlignDown(offset_bytes);
    uint64_t end = AlignUp(offset_bytes + length_bytes);
    uint8_t* buffer = bounce.Get(end - start, memory_align_bytes_);
    if (buffer == nullptr) return -ENOMEM;
    struct iovec whole = {buffer, end - start};
    int rc = PreadvFully(fd_, &whole, 1, start, end - start);
    if (rc != 0) return rc;
    CopyToSegments(iov, iov_count, buffer + (offset_bytes - start), length_bytes);
    return 0;
  }

  int Write(const MemberWrite& write) override {
    if (write.length_bytes == 0) return 0;
    bool partial_blocks = !RangeAligned(write.offset_bytes, write.length_bytes);
    uint64_t start = AlignDown(write.offset_bytes);
    uint64_t end = AlignUp(write.offset_bytes + write.length_bytes);
    RegionLock lock(this, start, end, partial_blocks);
    if (write.iov == nullptr && !partial_blocks) return ZeroAligned(write);
    if (write.iov == nullptr && write.zero_only_if_cheap) return -EOPNOTSUPP;
    if (!partial_blocks && SegmentsAligned(write.iov, write.iov_count))
      return WriteOut(write.iov, write.iov_count, write.offset_bytes, write.length_bytes,
                      write.durable);
    uint8_t* buffer = bounce.Get(end - start, memory_align_bytes_);
    if (buffer == nullptr) return -ENOMEM;
    if (partial_blocks) {
      // Fetch the device blocks the write only partly covers.
      if (write.offset_bytes != start) {
        int rc = ReadBlock(buffer, start);
        if (rc != 0) return rc;
      }
      uint64_t last_block = end - block_bytes_;
      if (write.offset_bytes + write.length_bytes != end &&
          (last_block != start || write.offset_bytes == start)) {
        int rc = ReadBlock(buffer + (last_block - start), last_block);
        if (rc != 0) return rc;
      }
    }
    uint8_t* target = buffer + (write.offset_bytes - start);
    if (write.iov == nullptr)
      memset(target, 0, write.length_bytes);
    else
      CopyFromSegments(target, write.iov, write.iov_count, write.length_bytes);
    struct iovec whole = {buffer, end - start};
    return WriteOut(&whole, 1, start, end - start, write.durable);
  }

  int Sync() override { return SyncFd(fd_); }

 private:
  // Locks the stripes of every 1 MiB region in [start, end), in ascending
  // stripe order so two writers can never wait on each other in a cycle.
  class RegionLock {
   public:
    RegionLock(BlockMember* member, uint64_t start, uint64_t end, bool exclusive)
        : member_(member), exclusive_(exclusive) {
      uint64_t first = start >> kRegionShift;
      uint64_t last = (end - 1) >> kRegionShift;
      if (last - first + 1 >= kStripeCount) {
        mask_ = ~uint64_t{0};
      } else {
        for (uint64_t region = first; region <= last; ++region) mask_ |= uint64_t{1} << (region % kStripeCount);
      }
      for (int stripe = 0; stripe < kStripeCount; ++stripe) {
        if ((mask_ >> stripe) & 1u) {
          if (exclusive_)
            member_->stripes_[stripe].lock();
          else
            member_->stripes_[stripe].lock_shared();
        }
      }
    }
    ~RegionLock() {
      for (int stripe = kStripeCount - 1; stripe >= 0; --stripe) {
        if ((mask_ >> stripe) & 1u) {
          if (exclusive_)
            member_->stripes_[stripe].unlock();
          else
            member_->stripes_[stripe].unlock_shared();
        }
      }
    }

   private:
    BlockMember* member_;
    bool exclusive_;
    uint64_t mask_ = 0;
  };

  uint64_t AlignDown(uint64_t value) const { return value - value % block_bytes_; }
  uint64_t AlignUp(uint64_t value) const { return AlignDown(value + block_bytes_ - 1); }
  bool RangeAligned(uint64_t offset, uint64_t length) const {
    return offset % block_bytes_ == 0 && length % block_bytes_ == 0;
  }
  bool SegmentsAligned(const struct iovec* iov, int iov_count) const {
    for (int i = 0; i < iov_count; ++i) {
      if (reinterpret_cast<uintptr_t>(iov[i].iov_base) % memory_align_bytes_ != 0 ||
          iov[i].iov_len % block_bytes_ != 0)
        return false;
    }
    return true;
  }

  int ReadBlock(uint8_t* target, uint64_t offset) {
    struct iovec one = {target, block_bytes_};
    return PreadvFully(fd_, &one, 1, offset, block_bytes_);
  }

  // durable: RWF_DSYNC, which the block layer turns into a FUA write (or a
  // write plus cache flush); where refused, a plain write and fdatasync.
  int WriteOut(const struct iovec* iov, int iov_count, uint64_t offset, uint64_t length,
               bool durable) {
    int rc = PwritevFully(fd_, iov, iov_count, offset, length, durable ? RWF_DSYNC : 0);
    if (rc == -EOPNOTSUPP && durable) {
      rc = PwritevFully(fd_, iov, iov_count, offset, length, 0);
      if (rc == 0) rc = SyncFd(fd_);
    }
    return rc;
  }

  int ZeroAligned(const MemberWrite& write) {
    auto offset = static_cast<off_t>(write.offset_bytes);
    auto length = static_cast<off_t>(write.length_bytes);
    // Punching asks the device (or the filesystem, for a file) to zero
    // without transferring data; it fails rather than falling back to
    // writing zeroes, which is what makes it the "cheap" path.
    if (punch_supported_.load(std::memory_order_relaxed)) {
      if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length) == 0)
        return write.durable ? SyncFd(fd_) : 0;
      if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) return -errno;
      punch_supported_.store(false, std::memory_order_relaxed);
    }
    if (write.zero_only_if_cheap) return -EOPNOTSUPP;
    // The kernel's zero-out writes zeroes itself when the device cannot.
    if (zero_range_supported_.load(std::memory_order_relaxed)) {
      if (fallocate(fd_, FALLOC_FL_ZERO_RANGE, offset, length) == 0)
        return write.durable ? SyncFd(fd_) : 0;
      if (errno != EOPNOTSUPP && errno != ENOSYS && errno != EINVAL) return -errno;
      zero_range_supported_.store(false, std::memory_order_relaxed);
    }
    int rc = WriteZeroBytes(fd_, write.offset_bytes, write.length_bytes);
    if (rc == 0 && write.durable) rc = SyncFd(fd_);
    return rc;
  }

  int fd_;
  std::string path_;
  uint64_t size_bytes_;
  uint32_t block_bytes_;
  uint32_t memory_align_bytes_;
  std::shared_mutex stripes_[kStripeCount];
  std::atomic<bool> punch_supported_{true};
  std::atomic<bool> zero_range_supported_{true};
};

bool IsPowerOfTwo(uint64_t value) { return value != 0 && (value & (value - 1)) == 0; }

}  // namespace

std::unique_ptr<BackendMember> OpenBlockMember(const std::string& path, OpenFailure* failure) {
  int fd = open(path.c_str(), O_RDWR | O_DIRECT | O_CLOEXEC);
  if (fd < 0) {
    if (errno == EINVAL)
      *failure = {"EINVAL", path + ": the filesystem does not support O_DIRECT (use kind 'file')"};
    else if (errno == ENOENT)
      *failure = {"ENOENT", path + " does not exist (kind 'block' never creates its members)"};
    else
      *failure = ErrnoFailure(errno, "cannot open", path);
    return nullptr;
  }
  auto fail = [&](OpenFailure why) {
    *failure = std::move(why);
    close(fd);
    return nullptr;
  };
  struct stat status {};
  if (fstat(fd, &status) != 0) return fail(ErrnoFailure(errno, "cannot stat", path));
  uint64_t size_bytes = 0;
  uint32_t block_bytes = 0;
  uint32_t memory_align_bytes = 0;
  if (S_ISBLK(status.st_mode)) {
    if (ioctl(fd, BLKGETSIZE64, &size_bytes) != 0) return fail(ErrnoFailure(errno, "BLKGETSIZE64", path));
    int logical = 0;
    if (ioctl(fd, BLKSSZGET, &logical) != 0) return fail(ErrnoFailure(errno, "BLKSSZGET", path));
    block_bytes = static_cast<uint32_t>(logical);
    memory_align_bytes = block_bytes;
  } else if (S_ISREG(status.st_mode)) {
    size_bytes = static_cast<uint64_t>(status.st_size);
    block_bytes = 4096;  // safe for every filesystem unless statx says less
    memory_align_bytes = 4096;
  } else {
    return fail({"EINVAL", path + " is neither a block device nor a regular file"});
  }
#ifdef STATX_DIOALIGN
  // The kernel knows the real direct I/O alignment (Linux 6.1+).
  struct statx extended {};
  if (statx(fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &extended) == 0 &&
      (extended.stx_mask & STATX_DIOALIGN) != 0) {
    if (extended.stx_dio_offset_align == 0)
      return fail({"EINVAL", path + ": the filesystem does not support O_DIRECT (use kind 'file')"});
    block_bytes = extended.stx_dio_offset_align;
    memory_align_bytes = std::max<uint32_t>(extended.stx_dio_mem_align, 1);
  }
#endif
  if (!IsPowerOfTwo(block_bytes) || block_bytes > 4096 || !IsPowerOfTwo(memory_align_bytes))
    return fail({"EINVAL", path + ": unsupported direct I/O alignment of " + std::to_string(block_bytes) +
                               " bytes (at most 4096)"});
  if (size_bytes == 0) return fail({"EINVAL", path + " is empty"});
  OpenFailure lock_failure;
  if (!LockMember(fd, path, &lock_failure)) return fail(lock_failure);
  return std::make_unique<BlockMember>(fd, path, size_bytes, block_bytes, memory_align_bytes);
}

}  // namespace offpath::emu
