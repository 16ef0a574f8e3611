// FdWatcher: readiness of a file descriptor delivered to a JS callback from
// the event loop (uv_poll), so an eventfd "interrupt" or a control socket
// wakes Node without a thread and without blocking the loop.
//
// Also pollFd(): a blocking wait with a timeout, for worker threads that have
// nothing to do until a completion arrives.
#include <poll.h>
#include <time.h>
#include <uv.h>

#include <cerrno>

#include "errors.h"
#include "registry.h"

namespace offpath {
namespace {

constexpr int kReadable = 1;
constexpr int kWritable = 2;
// The peer closed its end (EPOLLRDHUP): lets a thread that must not read a
// socket (another thread owns its messages) still learn that it hung up.
constexpr int kDisconnect = 4;

class FdWatcher : public Napi::ObjectWrap<FdWatcher> {
 public:
  static Napi::Function Define(Napi::Env env) {
    return DefineClass(env, "FdWatcher",
                       {InstanceMethod<&FdWatcher::Start>("start"),
                        InstanceMethod<&FdWatcher::Stop>("stop"),
                        InstanceMethod<&FdWatcher::Close>("close"),
                        InstanceMethod<&FdWatcher::SetRef>("ref"),
                        InstanceMethod<&FdWatcher::SetUnref>("unref")});
  }

  // new FdWatcher(fd, callback(error | null, events))
  explicit FdWatcher(const Napi::CallbackInfo& info)
      : Napi::ObjectWrap<FdWatcher>(info), context_(info.Env(), "offpath:FdWatcher") {
    auto env = info.Env();
    int fd = ArgFd(info, 0, "fd");
    if (!info[1].IsFunction()) ThrowType(env, "callback must be a function");
    callback_ = Napi::Persistent(info[1].As<Napi::Function>());
    uv_loop_t* loop = nullptr;
    if (napi_get_uv_event_loop(env, &loop) != napi_ok) ThrowStorage(env, "EINVAL", "no event loop");
    handle_ = new uv_poll_t();
    int rc = uv_poll_init(loop, handle_, fd);
    if (rc != 0) {
      delete handle_;
      handle_ = nullptr;
      ThrowErrno(env, "uv_poll_init", -rc);
    }
    handle_->data = this;
    env_ = env;
    napi_add_env_cleanup_hook(env, CleanupHook, this);
  }

  ~FdWatcher() override { CloseHandle(); }

 private:
  static void CleanupHook(void* arg) { static_cast<FdWatcher*>(arg)->CloseHandle(); }

  // Releases the uv handle; the handle's memory is freed by libuv's close
  // callback because the loop may still reference it until then.
  void CloseHandle() {
    if (handle_ == nullptr) return;
    napi_remove_env_cleanup_hook(env_, CleanupHook, this);
    uv_poll_stop(handle_);
    handle_->data = nullptr;
    uv_close(reinterpret_cast<uv_handle_t*>(handle_),
             [](uv_handle_t* handle) { delete reinterpret_cast<uv_poll_t*>(handle); });
    handle_ = nullptr;
  }

  Napi::Value Start(const Napi::CallbackInfo& info) {
    auto env = info.Env();
    int events = static_cast<int>(OptInteger(info, 0, "events", 1, 7, kReadable));
    if (handle_ == nullptr) ThrowStorage(env, "ECLOSED", "FdWatcher is closed");
    int uv_events = ((events & kReadable) ? UV_READABLE : 0) | ((events & kWritable) ? UV_WRITABLE : 0) |
                    ((events & kDisconnect) ? UV_DISCONNECT : 0);
    int rc = uv_poll_start(handle_, uv_events, OnEvent);
    if (rc != 0) ThrowErrno(env, "uv_poll_start", -rc);
    // An active watcher must outlive JS references to it.
    if (!active_) Ref();
    active_ = true;
    return env.Undefined();
  }

  void Deactivate() {
    if (active_) Unref();
    active_ = false;
  }

  Napi::Value Stop(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_poll_stop(handle_);
    Deactivate();
    return info.Env().Undefined();
  }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    CloseHandle();
    Deactivate();
    return info.Env().Undefined();
  }

  Napi::Value SetRef(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_ref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  Napi::Value SetUnref(const Napi::CallbackInfo& info) {
    if (handle_ != nullptr) uv_unref(reinterpret_cast<uv_handle_t*>(handle_));
    return info.Env().Undefined();
  }

  static void OnEvent(uv_poll_t* handle, int status, int events) {
    auto* self = static_cast<FdWatcher*>(handle->data);
    if (self == nullptr) return;
    Napi::Env env = self->env_;
    Napi::HandleScope scope(env);
    Napi::Value error = env.Null();
    if (status < 0) {
      auto object = Napi::Error::New(env, std::string("poll: ") + uv_err_name(status)).Value();
      object.Set("code", uv_err_name(status));
      error = object;
    }
    int js_events = ((events & UV_READABLE) ? kReadable : 0) | ((events & UV_WRITABLE) ? kWritable : 0) |
                    ((events & UV_DISCONNECT) ? kDisconnect : 0);
    try {
      self->callback_.MakeCallback(env.Global(), {error, Napi::Number::New(env, js_events)},
                                   self->context_);
    } catch (const Napi::Error& e) {
      // Nobody above a libuv callback can catch: report it like any other
      // uncaught exception in a Node callback.
      napi_fatal_exception(env, e.Value());
    }
  }

  Napi::Env env_{nullptr};
  Napi::FunctionReference callback_;
  Napi::AsyncContext context_;
  uv_poll_t* handle_ = nullptr;
  bool active_ = false;
};

int64_t NowMs() {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return int64_t{ts.tv_sec} * 1000 + ts.tv_nsec / 1000000;
}

// pollFd(fd, events, timeoutMs) -> ready events (0 on timeout). Blocks the
// calling thread: meant for worker threads, never the main event loop.
Napi::Value PollFd(const Napi::CallbackInfo& info) {
  int fd = ArgFd(info, 0, "fd");
  int events = static_cast<int>(ArgInteger(info, 1, "events", 1, 3));
  int64_t timeout_ms = OptInteger(info, 2, "timeoutMs", -1, INT32_MAX, -1);
  pollfd pfd{fd, static_cast<short>(((events & kReadable) ? POLLIN : 0) | ((events & kWritable) ? POLLOUT : 0)), 0};
  int64_t deadline = timeout_ms < 0 ? -1 : NowMs() + timeout_ms;
  for (;;) {
    int wait_ms = deadline < 0 ? -1 : static_cast<int>(std::max<int64_t>(0, deadline - NowMs()));
    int rc = poll(&pfd, 1, wait_ms);
    if (rc >= 0) break;
    if (errno != EINTR) ThrowErrno(info.Env(), "poll", errno);
  }
  if (pfd.revents & POLLNVAL) ThrowErrno(info.Env(), "poll", EBADF);
  int ready = ((pfd.revents & (POLLIN | POLLHUP | POLLERR)) ? kReadable : 0) |
              ((pfd.revents & (POLLOUT | POLLERR)) ? kWritable : 0);
  return Napi::Number::New(info.Env(), ready & events);
}

}  // namespace

void RegisterFdWatch(Napi::Env env, Napi::Object exports) {
  exports.Set("FdWatcher", FdWatcher::Define(env));
  exports.Set("pollFd", Napi::Function::New(env, PollFd, "pollFd"));
}

}  // namespace offpath
