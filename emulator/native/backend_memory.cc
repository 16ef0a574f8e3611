// The memory member: an anonymous private mapping, reserved lazily
// (MAP_NORESERVE) so an unwritten pool costs nothing. For tests and CI; its
// contents die with the process, so it has no volatile cache to flush.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "backend_io.h"
#include "backend_member.h"

namespace offpath::emu {
namespace {

constexpr uint64_t kPageBytes = 4096;

class MemoryMember final : public BackendMember {
 public:
  MemoryMember(uint8_t* base, uint64_t size_bytes) : base_(base), size_bytes_(size_bytes) {}
  ~MemoryMember() override { munmap(base_, size_bytes_); }

  const std::string& path() const override { return path_; }
  uint64_t size_bytes() const override { return size_bytes_; }
  bool volatile_cache() const override { return false; }

  int Read(uint64_t offset_bytes, const struct iovec* iov, int iov_count,
           uint64_t length_bytes) override {
    if (!InRange(offset_bytes, length_bytes)) return -EINVAL;
    const uint8_t* source = base_ + offset_bytes;
    for (int i = 0; i < iov_count && length_bytes > 0; ++i) {
      size_t piece = std::min<uint64_t>(iov[i].iov_len, length_bytes);
      memcpy(iov[i].iov_base, source, piece);
      source += piece;
      length_bytes -= piece;
    }
    return length_bytes == 0 ? 0 : -EINVAL;
  }

  int Write(const MemberWrite& write) override {
    if (!InRange(write.offset_bytes, write.length_bytes)) return -EINVAL;
    uint8_t* target = base_ + write.offset_bytes;
    if (write.iov == nullptr) return Zero(target, write.length_bytes);
    uint64_t remaining = write.length_bytes;
    for (int i = 0; i < write.iov_count && remaining > 0; ++i) {
      size_t piece = std::min<uint64_t>(write.iov[i].iov_len, remaining);
      memcpy(target, write.iov[i].iov_base, piece);
      target += piece;
      remaining -= piece;
    }
    return remaining == 0 ? 0 : -EINVAL;
  }

  int Sync() override { return 0; }

 private:
  bool InRange(uint64_t offset_bytes, uint64_t length_bytes) const {
    return offset_bytes <= size_bytes_ && length_bytes <= size_bytes_ - offset_bytes;
  }

  // Whole pages are handed back to the kernel (they read as zeroes again and
  // stop costing memory, the in-memory analogue of punching a hole); the
  // ragged edges are cleared by hand.
  static int Zero(uint8_t* target, uint64_t length_bytes) {
    auto start = reinterpret_cast<uintptr_t>(target);
    uintptr_t end = start + length_bytes;
    uintptr_t first_page = (start + kPageBytes - 1) & ~(kPageBytes - 1);
    uintptr_t last_page = end & ~(kPageBytes - 1);
    if (first_page >= last_page) {
      memset(target, 0, length_bytes);
      return 0;
    }
    memset(target, 0, first_page - start);
    if (madvise(reinterpret_cast<void*>(first_page), last_page - first_page, MADV_DONTNEED) != 0)
      memset(reinterpret_cast<void*>(first_page), 0, last_page - first_page);
    memset(reinterpret_cast<void*>(last_page), 0, end - last_page);
    return 0;
  }

  uint8_t* base_;
  uint64_t size_bytes_;
  std::string path_ = "(memory)";
};

}  // namespace

std::unique_ptr<BackendMember> OpenMemoryMember(uint64_t size_bytes, OpenFailure* failure) {
  if (size_bytes == 0) {
    *failure = {"EINVAL", "a memory store needs sizeBytes > 0"};
    return nullptr;
  }
  void* base = mmap(nullptr, size_bytes, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (base == MAP_FAILED) {
    *failure = ErrnoFailure(errno, "mmap", "(memory store of " + std::to_string(size_bytes) + " bytes)");
    return nullptr;
  }
  return std::make_unique<MemoryMember>(static_cast<uint8_t*>(base), size_bytes);
}

}  // namespace offpath::emu
