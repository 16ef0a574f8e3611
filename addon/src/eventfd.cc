// eventfd: the emulator's completion "interrupt" and the application's
// wake-up for a sleeping poller. Signals add to a 64-bit counter; a read
// returns and clears it. Always non-blocking here: a blocking wait is pollFd()
// on a worker thread, or an FdWatcher on the event loop.
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>

#include "errors.h"
#include "registry.h"

namespace offpath {
namespace {

Napi::Value EventfdCreate(const Napi::CallbackInfo& info) {
  auto initial = static_cast<unsigned>(OptInteger(info, 0, "initial", 0, UINT32_MAX, 0));
  int flags = EFD_CLOEXEC | EFD_NONBLOCK;
  if (info.Length() > 1 && info[1].IsObject() && OptBool(info[1].As<Napi::Object>(), "semaphore", false))
    flags |= EFD_SEMAPHORE;
  int fd = eventfd(initial, flags);
  if (fd < 0) ThrowErrno(info.Env(), "eventfd", errno);
  return Napi::Number::New(info.Env(), fd);
}

// eventfdSignal(fd, count = 1) -> true, or false when the counter is full
// (a reader is that far behind; the pending signal already wakes it).
Napi::Value EventfdSignal(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint64_t count = static_cast<uint64_t>(OptInteger(info, 1, "count", 1, INT32_MAX, 1));
  for (;;) {
    if (write(fd, &count, sizeof count) == sizeof count) return Napi::Boolean::New(info.Env(), true);
    if (errno == EAGAIN) return Napi::Boolean::New(info.Env(), false);
    if (errno != EINTR) ThrowErrno(info.Env(), "write(eventfd)", errno);
  }
}

// eventfdRead(fd) -> the counter (then cleared), or 0 if nothing was signalled.
Napi::Value EventfdRead(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  uint64_t count = 0;
  for (;;) {
    if (read(fd, &count, sizeof count) == sizeof count) break;
    if (errno == EAGAIN) return Napi::Number::New(info.Env(), 0);
    if (errno != EINTR) ThrowErrno(info.Env(), "read(eventfd)", errno);
  }
  return Napi::Number::New(info.Env(), static_cast<double>(count));
}

}  // namespace

void RegisterEventfd(Napi::Env env, Napi::Object exports) {
  exports.Set("eventfdCreate", Napi::Function::New(env, EventfdCreate, "eventfdCreate"));
  exports.Set("eventfdSignal", Napi::Function::New(env, EventfdSignal, "eventfdSignal"));
  exports.Set("eventfdRead", Napi::Function::New(env, EventfdRead, "eventfdRead"));
}

}  // namespace offpath
