// VFIO: a PCI function (an SR-IOV NVMe VF) driven from user space. The
// container is one IOMMU address space (type1 v2); a group joins it; the
// device fd gives the function's regions (BAR0 mapped as an ArrayBuffer, PCI
// config space read and written through the fd), its MSI-X vectors as
// eventfds, and reset. DMA memory is mapped into the IOMMU at IOVAs chosen by
// the caller, inside the ranges VFIO_IOMMU_GET_INFO reports.
//
// Each export is one ioctl (or one pread/pwrite/mmap) and throws StorageError
// with the errno name on failure; fds are opened close-on-exec.
#include <fcntl.h>
#include <linux/vfio.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <string>
#include <vector>

#include "addon_state.h"
#include "errors.h"
#include "registry.h"

namespace offpath {
namespace {

// IOVAs and sizes cross into JS as Numbers: keep them exact.
constexpr int64_t kMaxSafeInteger = (int64_t{1} << 53) - 1;

int OpenOrThrow(Napi::Env env, const std::string& path) {
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0) ThrowErrno(env, ("open(" + path + ")").c_str(), errno);
  return fd;
}

[[noreturn]] void CloseAndThrow(Napi::Env env, int fd, const char* syscall) {
  int err = errno;
  close(fd);
  ThrowErrno(env, syscall, err);
}

uint32_t ArgIndex(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return static_cast<uint32_t>(ArgInteger(info, index, name, 0, 255));
}

vfio_region_info RegionInfo(Napi::Env env, int device_fd, uint32_t index) {
  vfio_region_info region{};
  region.argsz = sizeof region;
  region.index = index;
  if (ioctl(device_fd, VFIO_DEVICE_GET_REGION_INFO, &region) != 0)
    ThrowErrno(env, "ioctl(VFIO_DEVICE_GET_REGION_INFO)", errno);
  return region;
}

// vfioOpenContainer(path = '/dev/vfio/vfio') -> fd, after checking the API
// version and that the type1 v2 IOMMU backend is there.
Napi::Value OpenContainer(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  std::string path = info.Length() > 0 && !info[0].IsUndefined() ? ArgString(info, 0, "path") : "/dev/vfio/vfio";
  int fd = OpenOrThrow(env, path);
  int version = ioctl(fd, VFIO_GET_API_VERSION);
  if (version < 0) CloseAndThrow(env, fd, "ioctl(VFIO_GET_API_VERSION)");
  if (version != VFIO_API_VERSION) {
    close(fd);
    ThrowStorage(env, "EPROTO", "VFIO API version " + std::to_string(version) + ", expected " + std::to_string(VFIO_API_VERSION));
  }
  int type1v2 = ioctl(fd, VFIO_CHECK_EXTENSION, VFIO_TYPE1v2_IOMMU);
  if (type1v2 < 0) CloseAndThrow(env, fd, "ioctl(VFIO_CHECK_EXTENSION)");
  if (type1v2 == 0) {
    close(fd);
    ThrowStorage(env, "ENOTSUP", "VFIO has no type1 v2 IOMMU backend (modprobe vfio_iommu_type1; is the IOMMU on?)");
  }
  return Napi::Number::New(env, fd);
}

// vfioOpenGroup(path) -> fd of a viable group (every device in it bound to
// vfio-pci or to no driver); a group that is not viable is EGROUPNOTVIABLE.
Napi::Value OpenGroup(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  std::string path = ArgString(info, 0, "path");
  int fd = OpenOrThrow(env, path);
  vfio_group_status status{};
  status.argsz = sizeof status;
  if (ioctl(fd, VFIO_GROUP_GET_STATUS, &status) != 0) CloseAndThrow(env, fd, "ioctl(VFIO_GROUP_GET_STATUS)");
  if (!(status.flags & VFIO_GROUP_FLAGS_VIABLE)) {
    close(fd);
    ThrowStorage(env, "EGROUPNOTVIABLE",
                 path + ": IOMMU group not viable (bind every device of the group to vfio-pci or unbind it)");
  }
  return Napi::Number::New(env, fd);
}

// vfioGroupStatus(groupFd) -> { viable, containerSet }
Napi::Value GroupStatus(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  vfio_group_status status{};
  status.argsz = sizeof status;
  if (ioctl(ArgFd(info, 0, "groupFd"), VFIO_GROUP_GET_STATUS, &status) != 0)
    ThrowErrno(env, "ioctl(VFIO_GROUP_GET_STATUS)", errno);
  auto result = Napi::Object::New(env);
  result.Set("viable", (status.flags & VFIO_GROUP_FLAGS_VIABLE) != 0);
  result.Set("containerSet", (status.flags & VFIO_GROUP_FLAGS_CONTAINER_SET) != 0);
  return result;
}

// vfioGroupSetContainer(groupFd, containerFd)
Napi::Value GroupSetContainer(const Napi::CallbackInfo& info) {
  int group = ArgFd(info, 0, "groupFd");
  int container = ArgFd(info, 1, "containerFd");
  if (ioctl(group, VFIO_GROUP_SET_CONTAINER, &container) != 0)
    ThrowErrno(info.Env(), "ioctl(VFIO_GROUP_SET_CONTAINER)", errno);
  return info.Env().Undefined();
}

// vfioSetIommu(containerFd, type = VFIO_TYPE1v2_IOMMU); after a group joined.
Napi::Value SetIommu(const Napi::CallbackInfo& info) {
  int container = ArgFd(info, 0, "containerFd");
  auto type = static_cast<unsigned long>(OptInteger(info, 1, "type", 0, 64, VFIO_TYPE1v2_IOMMU));
  if (ioctl(container, VFIO_SET_IOMMU, type) != 0) ThrowErrno(info.Env(), "ioctl(VFIO_SET_IOMMU)", errno);
  return info.Env().Undefined();
}

// vfioGetDeviceFd(groupFd, address) -> fd, e.g. address '0000:01:00.1'.
Napi::Value GetDeviceFd(const Napi::CallbackInfo& info) {
  std::string address = ArgString(info, 1, "address");
  int fd = ioctl(ArgFd(info, 0, "groupFd"), VFIO_GROUP_GET_DEVICE_FD, address.c_str());
  if (fd < 0) ThrowErrno(info.Env(), "ioctl(VFIO_GROUP_GET_DEVICE_FD)", errno);
  // Close-on-exec like every fd the addon opens (the kernel sets it too).
  fcntl(fd, F_SETFD, FD_CLOEXEC);
  return Napi::Number::New(info.Env(), fd);
}

// vfioDeviceInfo(deviceFd) -> { flags, pci, reset, regions, irqs }
Napi::Value DeviceInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  vfio_device_info device{};
  device.argsz = sizeof device;
  if (ioctl(ArgFd(info, 0, "deviceFd"), VFIO_DEVICE_GET_INFO, &device) != 0)
    ThrowErrno(env, "ioctl(VFIO_DEVICE_GET_INFO)", errno);
  auto result = Napi::Object::New(env);
  result.Set("flags", device.flags);
  result.Set("pci", (device.flags & VFIO_DEVICE_FLAGS_PCI) != 0);
  result.Set("reset", (device.flags & VFIO_DEVICE_FLAGS_RESET) != 0);
  result.Set("regions", device.num_regions);
  result.Set("irqs", device.num_irqs);
  return result;
}

// vfioRegionInfo(deviceFd, index) -> { index, flags, size, offset, read, write, mmap }
Napi::Value GetRegionInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  vfio_region_info region = RegionInfo(env, ArgFd(info, 0, "deviceFd"), ArgIndex(info, 1, "index"));
  auto result = Napi::Object::New(env);
  result.Set("index", region.index);
  result.Set("flags", region.flags);
  result.Set("size", static_cast<double>(region.size));
  result.Set("offset", static_cast<double>(region.offset));
  result.Set("read", (region.flags & VFIO_REGION_INFO_FLAG_READ) != 0);
  result.Set("write", (region.flags & VFIO_REGION_INFO_FLAG_WRITE) != 0);
  result.Set("mmap", (region.flags & VFIO_REGION_INFO_FLAG_MMAP) != 0);
  return result;
}

// vfioMmapRegion(deviceFd, index, lengthBytes = region size) -> ArrayBuffer;
// munmap(arrayBuffer) detaches and unmaps it like any other mapping.
Napi::Value MmapRegion(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "deviceFd");
  vfio_region_info region = RegionInfo(env, fd, ArgIndex(info, 1, "index"));
  if (!(region.flags & VFIO_REGION_INFO_FLAG_MMAP))
    ThrowStorage(env, "ENOTSUP", "VFIO region " + std::to_string(region.index) + " cannot be mmapped");
  auto length = static_cast<size_t>(
      OptInteger(info, 2, "lengthBytes", 1, static_cast<int64_t>(region.size), static_cast<int64_t>(region.size)));
  void* address = mmap(nullptr, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, static_cast<off_t>(region.offset));
  if (address == MAP_FAILED) ThrowErrno(env, "mmap(VFIO region)", errno);
  return WrapMapping(env, address, length);
}

// vfioRegionRead(deviceFd, index, offset, lengthBytes) -> Buffer. For config
// space and registers, use 1, 2 or 4 bytes at a naturally aligned offset:
// vfio-pci turns each into one access of that width.
Napi::Value RegionRead(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "deviceFd");
  vfio_region_info region = RegionInfo(env, fd, ArgIndex(info, 1, "index"));
  auto offset = ArgInteger(info, 2, "offset", 0, static_cast<int64_t>(region.size));
  auto length = ArgInteger(info, 3, "lengthBytes", 1, static_cast<int64_t>(region.size) - offset);
  std::vector<uint8_t> bytes(static_cast<size_t>(length));
  ssize_t done = pread(fd, bytes.data(), bytes.size(), static_cast<off_t>(region.offset + offset));
  if (done < 0) ThrowErrno(env, "pread(VFIO region)", errno);
  if (static_cast<size_t>(done) != bytes.size())
    ThrowStorage(env, "EIO", "short read of VFIO region " + std::to_string(region.index));
  return Napi::Buffer<uint8_t>::Copy(env, bytes.data(), bytes.size());
}

// vfioRegionWrite(deviceFd, index, offset, bytes)
Napi::Value RegionWrite(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "deviceFd");
  vfio_region_info region = RegionInfo(env, fd, ArgIndex(info, 1, "index"));
  auto offset = ArgInteger(info, 2, "offset", 0, static_cast<int64_t>(region.size));
  ByteSpan bytes = ArgBytes(info, 3, "bytes");
  if (bytes.data == nullptr && bytes.length > 0) ThrowStorage(env, "ENOTMAPPED", "bytes are detached");
  if (offset + static_cast<int64_t>(bytes.length) > static_cast<int64_t>(region.size))
    ThrowRange(env, "the write runs past the end of the region");
  ssize_t done = pwrite(fd, bytes.data, bytes.length, static_cast<off_t>(region.offset + offset));
  if (done < 0) ThrowErrno(env, "pwrite(VFIO region)", errno);
  if (static_cast<size_t>(done) != bytes.length)
    ThrowStorage(env, "EIO", "short write to VFIO region " + std::to_string(region.index));
  return env.Undefined();
}

// vfioIommuInfo(containerFd) -> { flags, pageSizes: bigint, iovaRanges:
// [{start, end}] (bigint, inclusive) | null, dmaAvailable: number | null }.
// Needs VFIO_SET_IOMMU first.
Napi::Value IommuInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "containerFd");
  std::vector<uint8_t> buffer(sizeof(vfio_iommu_type1_info));
  auto* iommu = reinterpret_cast<vfio_iommu_type1_info*>(buffer.data());
  iommu->argsz = sizeof(vfio_iommu_type1_info);
  if (ioctl(fd, VFIO_IOMMU_GET_INFO, iommu) != 0) ThrowErrno(env, "ioctl(VFIO_IOMMU_GET_INFO)", errno);
  if ((iommu->flags & VFIO_IOMMU_INFO_CAPS) && iommu->argsz > buffer.size()) {
    // The capability chain does not fit: ask again with the size it told us.
    uint32_t needed = iommu->argsz;
    buffer.assign(needed, 0);
    iommu = reinterpret_cast<vfio_iommu_type1_info*>(buffer.data());
    iommu->argsz = needed;
    if (ioctl(fd, VFIO_IOMMU_GET_INFO, iommu) != 0) ThrowErrno(env, "ioctl(VFIO_IOMMU_GET_INFO)", errno);
  }
  auto result = Napi::Object::New(env);
  result.Set("flags", iommu->flags);
  result.Set("pageSizes", Napi::BigInt::New(env, static_cast<uint64_t>(iommu->iova_pgsizes)));
  Napi::Value ranges = env.Null();
  Napi::Value available = env.Null();
  if (iommu->flags & VFIO_IOMMU_INFO_CAPS) {
    uint32_t offset = iommu->cap_offset;
    // Each header is bounds-checked: the chain comes from the kernel, but a
    // bad offset must not read past the buffer.
    while (offset != 0 && offset + sizeof(vfio_info_cap_header) <= buffer.size()) {
      auto* header = reinterpret_cast<vfio_info_cap_header*>(buffer.data() + offset);
      if (header->id == VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE &&
          offset + sizeof(vfio_iommu_type1_info_cap_iova_range) <= buffer.size()) {
        auto* cap = reinterpret_cast<vfio_iommu_type1_info_cap_iova_range*>(header);
        auto list = Napi::Array::New(env);
        for (uint32_t i = 0; i < cap->nr_iovas; i++) {
          size_t end = offset + sizeof(*cap) + (i + 1) * sizeof(vfio_iova_range);
          if (end > buffer.size()) break;
          auto range = Napi::Object::New(env);
          range.Set("start", Napi::BigInt::New(env, static_cast<uint64_t>(cap->iova_ranges[i].start)));
          range.Set("end", Napi::BigInt::New(env, static_cast<uint64_t>(cap->iova_ranges[i].end)));
          list.Set(i, range);
        }
        ranges = list;
      } else if (header->id == VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL &&
                 offset + sizeof(vfio_iommu_type1_info_dma_avail) <= buffer.size()) {
        available = Napi::Number::New(env, reinterpret_cast<vfio_iommu_type1_info_dma_avail*>(header)->avail);
      }
      if (header->next <= offset) break;
      offset = header->next;
    }
  }
  result.Set("iovaRanges", ranges);
  result.Set("dmaAvailable", available);
  return result;
}

// vfioMapDma(containerFd, buffer, iova, { read = true, write = true }): the
// pages behind `buffer` (page aligned, whole pages) are pinned and mapped at
// iova. Pinned pages count against RLIMIT_MEMLOCK unless CAP_IPC_LOCK.
Napi::Value MapDma(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "containerFd");
  ByteSpan bytes = ArgBytes(info, 1, "buffer");
  auto iova = ArgInteger(info, 2, "iova", 0, kMaxSafeInteger);
  bool readable = true, writable = true;
  if (info.Length() > 3 && info[3].IsObject()) {
    readable = OptBool(info[3].As<Napi::Object>(), "read", true);
    writable = OptBool(info[3].As<Napi::Object>(), "write", true);
  }
  auto page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  if (bytes.data == nullptr) ThrowStorage(env, "ENOTMAPPED", "buffer is detached (unmapped)");
  if (reinterpret_cast<uintptr_t>(bytes.data) % page != 0 || bytes.length % page != 0 || bytes.length == 0)
    ThrowRange(env, "buffer must be whole pages, page aligned");
  if (static_cast<uint64_t>(iova) % page != 0) ThrowRange(env, "iova must be page aligned");
  vfio_iommu_type1_dma_map map{};
  map.argsz = sizeof map;
  map.flags = (readable ? VFIO_DMA_MAP_FLAG_READ : 0) | (writable ? VFIO_DMA_MAP_FLAG_WRITE : 0);
  map.vaddr = reinterpret_cast<uintptr_t>(bytes.data);
  map.iova = static_cast<uint64_t>(iova);
  map.size = bytes.length;
  if (ioctl(fd, VFIO_IOMMU_MAP_DMA, &map) != 0) ThrowErrno(env, "ioctl(VFIO_IOMMU_MAP_DMA)", errno);
  return env.Undefined();
}

// vfioUnmapDma(containerFd, iova, lengthBytes) -> bytes unmapped.
Napi::Value UnmapDma(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  vfio_iommu_type1_dma_unmap unmap{};
  unmap.argsz = sizeof unmap;
  unmap.iova = static_cast<uint64_t>(ArgInteger(info, 1, "iova", 0, kMaxSafeInteger));
  unmap.size = static_cast<uint64_t>(ArgInteger(info, 2, "lengthBytes", 1, kMaxSafeInteger));
  if (ioctl(ArgFd(info, 0, "containerFd"), VFIO_IOMMU_UNMAP_DMA, &unmap) != 0)
    ThrowErrno(env, "ioctl(VFIO_IOMMU_UNMAP_DMA)", errno);
  return Napi::Number::New(env, static_cast<double>(unmap.size));
}

// vfioIrqInfo(deviceFd, index) -> { flags, count, eventfd }
Napi::Value IrqInfo(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  vfio_irq_info irq{};
  irq.argsz = sizeof irq;
  irq.index = ArgIndex(info, 1, "index");
  if (ioctl(ArgFd(info, 0, "deviceFd"), VFIO_DEVICE_GET_IRQ_INFO, &irq) != 0)
    ThrowErrno(env, "ioctl(VFIO_DEVICE_GET_IRQ_INFO)", errno);
  auto result = Napi::Object::New(env);
  result.Set("flags", irq.flags);
  result.Set("count", irq.count);
  result.Set("eventfd", (irq.flags & VFIO_IRQ_INFO_EVENTFD) != 0);
  return result;
}

// vfioSetIrqs(deviceFd, index, start, fds | null): triggers vectors
// start..start+fds.length-1 signal those eventfds (-1 leaves one unset).
// The first call enables MSI/MSI-X with start+fds.length vectors; on kernels
// before 6.5 that count is then fixed until disabled. fds null (or []) with
// start 0 disables the index altogether.
Napi::Value SetIrqs(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "deviceFd");
  uint32_t index = ArgIndex(info, 1, "index");
  auto start = static_cast<uint32_t>(ArgInteger(info, 2, "start", 0, 2048));
  std::vector<int32_t> fds;
  if (info.Length() > 3 && info[3].IsArray()) {
    auto array = info[3].As<Napi::Array>();
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value value = array.Get(i);
      if (!value.IsNumber()) ThrowType(env, "fds must be an array of integers");
      fds.push_back(value.As<Napi::Number>().Int32Value());
    }
  } else if (info.Length() > 3 && !info[3].IsNull() && !info[3].IsUndefined()) {
    ThrowType(env, "fds must be an array of fds or null");
  }
  if (fds.size() > 2048) ThrowRange(env, "too many vectors");
  std::vector<uint8_t> buffer(sizeof(vfio_irq_set) + fds.size() * sizeof(int32_t));
  auto* set = reinterpret_cast<vfio_irq_set*>(buffer.data());
  set->argsz = static_cast<uint32_t>(buffer.size());
  set->index = index;
  set->start = start;
  set->count = static_cast<uint32_t>(fds.size());
  set->flags = VFIO_IRQ_SET_ACTION_TRIGGER | (fds.empty() ? VFIO_IRQ_SET_DATA_NONE : VFIO_IRQ_SET_DATA_EVENTFD);
  for (size_t i = 0; i < fds.size(); i++) reinterpret_cast<int32_t*>(set->data)[i] = fds[i];
  if (ioctl(fd, VFIO_DEVICE_SET_IRQS, set) != 0) ThrowErrno(env, "ioctl(VFIO_DEVICE_SET_IRQS)", errno);
  return env.Undefined();
}

// vfioDeviceReset(deviceFd): a function-level reset (or whatever reset the
// device offers); every register and queue is back at its power-on value.
Napi::Value DeviceReset(const Napi::CallbackInfo& info) {
  if (ioctl(ArgFd(info, 0, "deviceFd"), VFIO_DEVICE_RESET) != 0)
    ThrowErrno(info.Env(), "ioctl(VFIO_DEVICE_RESET)", errno);
  return info.Env().Undefined();
}

}  // namespace

void RegisterVfio(Napi::Env env, Napi::Object exports) {
  exports.Set("vfioOpenContainer", Napi::Function::New(env, OpenContainer, "vfioOpenContainer"));
  exports.Set("vfioOpenGroup", Napi::Function::New(env, OpenGroup, "vfioOpenGroup"));
  exports.Set("vfioGroupStatus", Napi::Function::New(env, GroupStatus, "vfioGroupStatus"));
  exports.Set("vfioGroupSetContainer", Napi::Function::New(env, GroupSetContainer, "vfioGroupSetContainer"));
  exports.Set("vfioSetIommu", Napi::Function::New(env, SetIommu, "vfioSetIommu"));
  exports.Set("vfioGetDeviceFd", Napi::Function::New(env, GetDeviceFd, "vfioGetDeviceFd"));
  exports.Set("vfioDeviceInfo", Napi::Function::New(env, DeviceInfo, "vfioDeviceInfo"));
  exports.Set("vfioRegionInfo", Napi::Function::New(env, GetRegionInfo, "vfioRegionInfo"));
  exports.Set("vfioMmapRegion", Napi::Function::New(env, MmapRegion, "vfioMmapRegion"));
  exports.Set("vfioRegionRead", Napi::Function::New(env, RegionRead, "vfioRegionRead"));
  exports.Set("vfioRegionWrite", Napi::Function::New(env, RegionWrite, "vfioRegionWrite"));
  exports.Set("vfioIommuInfo", Napi::Function::New(env, IommuInfo, "vfioIommuInfo"));
  exports.Set("vfioMapDma", Napi::Function::New(env, MapDma, "vfioMapDma"));
  exports.Set("vfioUnmapDma", Napi::Function::New(env, UnmapDma, "vfioUnmapDma"));
  exports.Set("vfioIrqInfo", Napi::Function::New(env, IrqInfo, "vfioIrqInfo"));
  exports.Set("vfioSetIrqs", Napi::Function::New(env, SetIrqs, "vfioSetIrqs"));
  exports.Set("vfioDeviceReset", Napi::Function::New(env, DeviceReset, "vfioDeviceReset"));
  auto constants = Napi::Object::New(env);
  constants.Set("API_VERSION", VFIO_API_VERSION);
  constants.Set("TYPE1v2_IOMMU", VFIO_TYPE1v2_IOMMU);
  constants.Set("PCI_BAR0_REGION_INDEX", static_cast<int>(VFIO_PCI_BAR0_REGION_INDEX));
  constants.Set("PCI_CONFIG_REGION_INDEX", static_cast<int>(VFIO_PCI_CONFIG_REGION_INDEX));
  constants.Set("PCI_INTX_IRQ_INDEX", static_cast<int>(VFIO_PCI_INTX_IRQ_INDEX));
  constants.Set("PCI_MSI_IRQ_INDEX", static_cast<int>(VFIO_PCI_MSI_IRQ_INDEX));
  constants.Set("PCI_MSIX_IRQ_INDEX", static_cast<int>(VFIO_PCI_MSIX_IRQ_INDEX));
  constants.Set("PCI_REQ_IRQ_INDEX", static_cast<int>(VFIO_PCI_REQ_IRQ_INDEX));
  exports.Set("vfioConstants", constants);
}

}  // namespace offpath
