// DMA regions: page-aligned shared memory the controller may read and write.
// Backed by a sealed memfd so the same pages can be registered with the
// emulator (fd passing) or mapped through the IOMMU (VFIO), optionally on
// hugepages so one IOMMU/TLB entry covers 2 MiB.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>

#include "addon_state.h"
#include "errors.h"
#include "registry.h"

namespace offpath {
namespace {

constexpr size_t kHugepageBytes = size_t{2} << 20;
constexpr int64_t kMaxDmaBytes = int64_t{64} << 30;

size_t RoundUp(size_t value, size_t unit) { return (value + unit - 1) / unit * unit; }

// Returns the memfd or -1 with errno set.
int CreateBackingFd(size_t length_bytes, bool hugepage) {
  unsigned flags = MFD_CLOEXEC | MFD_ALLOW_SEALING | (hugepage ? MFD_HUGETLB : 0);
  int fd = memfd_create(hugepage ? "offpath-dma-huge" : "offpath-dma", flags);
  if (fd < 0) return -1;
  // The size is fixed for the region's life: a peer that maps it must never
  // see it shrink (SIGBUS) or grow.
  if (ftruncate(fd, static_cast<off_t>(length_bytes)) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int err = errno;
    close(fd);
    errno = err;
    return -1;
  }
  return fd;
}

// Creates and maps the region; returns the failed call's name (errno set) or
// nullptr. MAP_POPULATE faults every page in now, not on the first I/O, so a
// hugetlb pool that runs dry fails here with ENOMEM instead of SIGBUS later.
const char* CreateMapping(size_t requested, bool huge, int* fd, void** address, size_t* length) {
  *length = RoundUp(requested, huge ? kHugepageBytes : static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  *fd = CreateBackingFd(*length, huge);
  if (*fd < 0) return huge ? "memfd_create(MFD_HUGETLB)" : "memfd_create";
  *address = mmap(nullptr, *length, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, *fd, 0);
  if (*address != MAP_FAILED) return nullptr;
  int err = errno;
  close(*fd);
  errno = err;
  return huge ? "mmap(hugetlb)" : "mmap";
}

// dmaAlloc(lengthBytes, { hugepage: 'none' | 'prefer' | 'require', lock })
//   -> { fd, buffer, lengthBytes, hugepage, locked }
Napi::Value DmaAlloc(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  auto requested = static_cast<size_t>(ArgInteger(info, 0, "lengthBytes", 1, kMaxDmaBytes));
  std::string hugepage_mode = "none";
  bool lock = true;
  if (info.Length() > 1 && info[1].IsObject()) {
    auto options = info[1].As<Napi::Object>();
    Napi::Value mode = options.Get("hugepage");
    if (!mode.IsUndefined()) {
      if (!mode.IsString()) ThrowType(env, "options.hugepage must be 'none', 'prefer' or 'require'");
      hugepage_mode = mode.As<Napi::String>().Utf8Value();
      if (hugepage_mode != "none" && hugepage_mode != "prefer" && hugepage_mode != "require")
        ThrowType(env, "options.hugepage must be 'none', 'prefer' or 'require'");
    }
    lock = OptBool(options, "lock", true);
  }

  bool huge = hugepage_mode != "none";
  size_t length = 0;
  int fd = -1;
  void* address = MAP_FAILED;
  const char* failed = CreateMapping(requested, huge, &fd, &address, &length);
  if (failed != nullptr && huge && hugepage_mode == "prefer") {
    huge = false;
    failed = CreateMapping(requested, huge, &fd, &address, &length);
  }
  if (failed != nullptr) ThrowErrno(env, failed, errno);
  // Locking keeps the pages resident (no major fault on the I/O path); it is
  // best effort because RLIMIT_MEMLOCK may be small for unprivileged users.
  bool locked = lock && mlock(address, length) == 0;

  auto result = Napi::Object::New(env);
  result.Set("fd", fd);
  result.Set("buffer", WrapMapping(env, address, length));
  result.Set("lengthBytes", static_cast<double>(length));
  result.Set("hugepage", huge);
  result.Set("locked", locked);
  return result;
}

}  // namespace

void RegisterDmaMemory(Napi::Env env, Napi::Object exports) {
  exports.Set("dmaAlloc", Napi::Function::New(env, DmaAlloc, "dmaAlloc"));
}

}  // namespace offpath
