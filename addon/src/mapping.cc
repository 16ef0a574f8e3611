// Shared memory for registers, queues and DMA regions: memfd_create,
// ftruncate, seals and MAP_SHARED mappings handed to JS as ArrayBuffers.
//
// Unmap story: munmap(arrayBuffer) detaches the ArrayBuffer before the pages
// go away, so every typed array over it reads as length 0 afterwards and JS
// can never touch unmapped memory. A mapping that JS forgets is unmapped when
// its ArrayBuffer is collected.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <limits>

#include "addon_state.h"
#include "errors.h"
#include "registry.h"

namespace offpath {
namespace {

constexpr int64_t kMaxMappingBytes = int64_t{1} << 40;

void FinalizeMapping(Napi::Env env, void* /*data*/, Mapping* mapping) {
  auto& mappings = State(env)->mappings;
  auto it = mappings.find(mapping->address);
  if (it != mappings.end() && it->second == mapping) mappings.erase(it);
  if (mapping->mapped) munmap(mapping->address, mapping->length_bytes);
  delete mapping;
}

Napi::Value MemfdCreate(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  std::string name = ArgString(info, 0, "name");
  unsigned flags = MFD_CLOEXEC;
  if (info.Length() > 1 && info[1].IsObject()) {
    auto options = info[1].As<Napi::Object>();
    if (!OptBool(options, "cloexec", true)) flags &= ~MFD_CLOEXEC;
    if (OptBool(options, "allowSealing", false)) flags |= MFD_ALLOW_SEALING;
    if (OptBool(options, "hugetlb", false)) flags |= MFD_HUGETLB;
  }
  int fd = memfd_create(name.c_str(), flags);
  if (fd < 0) ThrowErrno(env, "memfd_create", errno);
  return Napi::Number::New(env, fd);
}

Napi::Value Ftruncate(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int64_t length = ArgInteger(info, 1, "lengthBytes", 0, kMaxMappingBytes);
  if (ftruncate(fd, length) != 0) ThrowErrno(info.Env(), "ftruncate", errno);
  return info.Env().Undefined();
}

Napi::Value FileSize(const Napi::CallbackInfo& info) {
  struct stat st {};
  if (fstat(ArgFd(info, 0, "fd"), &st) != 0) ThrowErrno(info.Env(), "fstat", errno);
  return Napi::Number::New(info.Env(), static_cast<double>(st.st_size));
}

// Seals make a shared memfd safe to map from a peer we do not trust: without
// F_SEAL_SHRINK the owner could truncate it under us and our next access to
// the mapping would raise SIGBUS.
Napi::Value AddSeals(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int seals = static_cast<int>(ArgInteger(info, 1, "seals", 0, 0xffff));
  if (fcntl(fd, F_ADD_SEALS, seals) != 0) ThrowErrno(info.Env(), "fcntl(F_ADD_SEALS)", errno);
  return info.Env().Undefined();
}

Napi::Value GetSeals(const Napi::CallbackInfo& info) {
  int seals = fcntl(ArgFd(info, 0, "fd"), F_GET_SEALS);
  if (seals < 0) ThrowErrno(info.Env(), "fcntl(F_GET_SEALS)", errno);
  return Napi::Number::New(info.Env(), seals);
}

Napi::Value Mmap(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  int64_t length = ArgInteger(info, 1, "lengthBytes", 1, kMaxMappingBytes);
  int64_t offset = OptInteger(info, 2, "offsetBytes", 0, kMaxMappingBytes, 0);
  bool writable = true, populate = false, lock = false;
  if (info.Length() > 3 && info[3].IsObject()) {
    auto options = info[3].As<Napi::Object>();
    writable = OptBool(options, "writable", true);
    populate = OptBool(options, "populate", false);
    lock = OptBool(options, "lock", false);
  }
  if (offset % sysconf(_SC_PAGESIZE) != 0) ThrowRange(env, "offsetBytes must be page aligned");
  // Refuse to map past the end of the file: touching such pages is SIGBUS.
  struct stat st {};
  if (fstat(fd, &st) != 0) ThrowErrno(env, "fstat", errno);
  if (S_ISREG(st.st_mode) && offset + length > st.st_size)
    ThrowStorage(env, "ERANGE",
                 "mmap: " + std::to_string(offset + length) + " bytes requested but the file holds " +
                     std::to_string(st.st_size));
  int prot = PROT_READ | (writable ? PROT_WRITE : 0);
  int flags = MAP_SHARED | (populate ? MAP_POPULATE : 0) | (lock ? MAP_LOCKED : 0);
  void* address = mmap(nullptr, static_cast<size_t>(length), prot, flags, fd, offset);
  if (address == MAP_FAILED) ThrowErrno(env, "mmap", errno);
  return WrapMapping(env, address, static_cast<size_t>(length));
}

Napi::Value Munmap(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  if (!info[0].IsArrayBuffer()) ThrowType(env, "munmap: expected the ArrayBuffer returned by mmap");
  auto buffer = info[0].As<Napi::ArrayBuffer>();
  auto& mappings = State(env)->mappings;
  auto it = mappings.find(buffer.Data());
  if (buffer.Data() == nullptr || it == mappings.end() || !it->second->mapped)
    ThrowStorage(env, "ENOTMAPPED", "munmap: this ArrayBuffer is not a live mapping");
  Mapping* mapping = it->second;
  mappings.erase(it);
  // Detach first: once detached no JS view can reach the pages we unmap next.
  buffer.Detach();
  if (munmap(mapping->address, mapping->length_bytes) != 0) ThrowErrno(env, "munmap", errno);
  mapping->mapped = false;
  return env.Undefined();
}

Napi::Value IsMapped(const Napi::CallbackInfo& info) {
  if (!info[0].IsArrayBuffer()) return Napi::Boolean::New(info.Env(), false);
  auto& mappings = State(info.Env())->mappings;
  return Napi::Boolean::New(info.Env(),
                            mappings.count(info[0].As<Napi::ArrayBuffer>().Data()) != 0);
}

}  // namespace

Napi::ArrayBuffer WrapMapping(Napi::Env env, void* address, size_t length_bytes) {
  auto* mapping = new Mapping{address, length_bytes, true};
  State(env)->mappings[address] = mapping;
  return Napi::ArrayBuffer::New(env, address, length_bytes, FinalizeMapping, mapping);
}

void RegisterMapping(Napi::Env env, Napi::Object exports) {
  exports.Set("memfdCreate", Napi::Function::New(env, MemfdCreate, "memfdCreate"));
  exports.Set("ftruncate", Napi::Function::New(env, Ftruncate, "ftruncate"));
  exports.Set("fileSize", Napi::Function::New(env, FileSize, "fileSize"));
  exports.Set("addSeals", Napi::Function::New(env, AddSeals, "addSeals"));
  exports.Set("getSeals", Napi::Function::New(env, GetSeals, "getSeals"));
  exports.Set("mmap", Napi::Function::New(env, Mmap, "mmap"));
  exports.Set("munmap", Napi::Function::New(env, Munmap, "munmap"));
  exports.Set("isMapped", Napi::Function::New(env, IsMapped, "isMapped"));
  auto constants = Napi::Object::New(env);
  constants.Set("F_SEAL_SEAL", F_SEAL_SEAL);
  constants.Set("F_SEAL_SHRINK", F_SEAL_SHRINK);
  constants.Set("F_SEAL_GROW", F_SEAL_GROW);
  constants.Set("F_SEAL_WRITE", F_SEAL_WRITE);
  constants.Set("PAGE_SIZE", static_cast<double>(sysconf(_SC_PAGESIZE)));
  exports.Set("mappingConstants", constants);
}

}  // namespace offpath
