// NVMe admin pass-through on a controller the kernel's nvme driver owns
// (NVME_IOCTL_ADMIN_CMD on /dev/nvmeN): how the control plane manages a
// hardware PF — Namespace Management and Attachment, Virtualization
// Management, Identify — while the kernel keeps the PF's own queues.
//
// nvmeAdminCommand(fd, sqe, data?, { timeoutMs }) -> Promise<{ status16, dw0 }>
//   sqe: the 64-byte submission entry as libstorage encodes it (opcode, nsid,
//        cdw2/3, cdw10..15 are taken from it; the kernel assigns the command
//        id and builds PRPs for `data`).
//   data: the command's data buffer; the opcode's direction bits say whether
//        it is sent (bit 0) or filled in (bit 1).
//   status16: the CQE status field with the phase bit clear (0 = success),
//        the same convention as libstorage's queues.
// The ioctl blocks until the controller answers, so it runs on the libuv pool;
// the data is copied in and out, so the caller's buffer is never touched off
// the JS thread.
#include <fcntl.h>
#include <linux/nvme_ioctl.h>
#include <sys/ioctl.h>

#include <cerrno>
#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>

#include "errors.h"
#include "registry.h"

namespace offpath {
namespace {

constexpr size_t kSqeBytes = 64;
constexpr size_t kMaxDataBytes = size_t{1} << 20;

uint32_t Dword(const uint8_t* sqe, int index) {
  uint32_t value;
  std::memcpy(&value, sqe + index * 4, sizeof value);
  return value;
}

class AdminCommand : public Napi::AsyncWorker {
 public:
  AdminCommand(Napi::Env env, int fd, const uint8_t* sqe, ByteSpan data, Napi::Value data_value, uint32_t timeout_ms)
      : Napi::AsyncWorker(env), deferred_(Napi::Promise::Deferred::New(env)), fd_(fd), data_(data.data, data.data + data.length) {
    std::memset(&cmd_, 0, sizeof cmd_);
    cmd_.opcode = sqe[0];
    cmd_.nsid = Dword(sqe, 1);
    cmd_.cdw2 = Dword(sqe, 2);
    cmd_.cdw3 = Dword(sqe, 3);
    cmd_.cdw10 = Dword(sqe, 10);
    cmd_.cdw11 = Dword(sqe, 11);
    cmd_.cdw12 = Dword(sqe, 12);
    cmd_.cdw13 = Dword(sqe, 13);
    cmd_.cdw14 = Dword(sqe, 14);
    cmd_.cdw15 = Dword(sqe, 15);
    cmd_.timeout_ms = timeout_ms;
    if (!data_.empty()) data_ref_ = Napi::Persistent(data_value.As<Napi::Object>());
  }

  Napi::Promise Promise() { return deferred_.Promise(); }

  void Execute() override {
    cmd_.addr = data_.empty() ? 0 : reinterpret_cast<uintptr_t>(data_.data());
    cmd_.data_len = static_cast<uint32_t>(data_.size());
    status_ = ioctl(fd_, NVME_IOCTL_ADMIN_CMD, &cmd_);
    errno_ = status_ < 0 ? errno : 0;
  }

  void OnOK() override {
    auto env = Env();
    if (status_ < 0) {
      try {
        ThrowErrno(env, "ioctl(NVME_IOCTL_ADMIN_CMD)", errno_);
      } catch (const Napi::Error& error) {
        deferred_.Reject(error.Value());
      }
      return;
    }
    // Controller-to-host data comes back into the caller's buffer.
    if ((cmd_.opcode & 2) && !data_ref_.IsEmpty()) {
      Napi::Value value = data_ref_.Value();
      uint8_t* target = nullptr;
      size_t length = 0;
      if (value.IsTypedArray()) {
        auto array = value.As<Napi::TypedArray>();
        auto* base = static_cast<uint8_t*>(array.ArrayBuffer().Data());
        if (base != nullptr) target = base + array.ByteOffset();
        length = array.ByteLength();
      } else if (value.IsArrayBuffer()) {
        target = static_cast<uint8_t*>(value.As<Napi::ArrayBuffer>().Data());
        length = value.As<Napi::ArrayBuffer>().ByteLength();
      }
      if (target != nullptr) std::memcpy(target, data_.data(), std::min(length, data_.size()));
    }
    auto result = Napi::Object::New(env);
    // The ioctl returns the status field shifted right by one (no phase bit).
    result.Set("status16", (status_ & 0x7fff) << 1);
    result.Set("dw0", cmd_.result);
    deferred_.Resolve(result);
  }

  void OnError(const Napi::Error& error) override { deferred_.Reject(error.Value()); }

 private:
  Napi::Promise::Deferred deferred_;
  int fd_;
  std::vector<uint8_t> data_;
  Napi::ObjectReference data_ref_;
  nvme_admin_cmd cmd_;
  int status_ = 0;
  int errno_ = 0;
};

Napi::Value NvmeAdminCommand(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  ByteSpan sqe = ArgBytes(info, 1, "sqe");
  if (sqe.data == nullptr || sqe.length != kSqeBytes) ThrowRange(env, "sqe must be the 64 bytes of a submission entry");
  ByteSpan data{nullptr, 0};
  Napi::Value data_value = env.Undefined();
  if (info.Length() > 2 && !info[2].IsUndefined() && !info[2].IsNull()) {
    data = ArgBytes(info, 2, "data");
    if (data.data == nullptr) ThrowStorage(env, "ENOTMAPPED", "data is detached");
    if (data.length > kMaxDataBytes) ThrowRange(env, "admin data is at most 1 MiB");
    if (info[2].IsDataView()) ThrowType(env, "data must be a typed array or an ArrayBuffer");
    data_value = info[2];
  }
  uint32_t timeout_ms = 0;
  if (info.Length() > 3 && info[3].IsObject())
    timeout_ms = static_cast<uint32_t>(OptInt(info[3].As<Napi::Object>(), "timeoutMs", 0, UINT32_MAX, 0));
  auto* worker = new AdminCommand(env, fd, sqe.data, data, data_value, timeout_ms);
  auto promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace

void RegisterNvmeAdmin(Napi::Env env, Napi::Object exports) {
  exports.Set("nvmeAdminCommand", Napi::Function::New(env, NvmeAdminCommand, "nvmeAdminCommand"));
}

}  // namespace offpath
