// UNIX-domain SOCK_SEQPACKET sockets with what Node's net module cannot do:
// file descriptors passed with SCM_RIGHTS and the peer's credentials
// (SO_PEERCRED). Message boundaries are kept, so one message is one request.
//
// Every socket is non-blocking and close-on-exec. recv/send/accept return
// null when they would block; wait with an FdWatcher or pollFd. A received
// message of zero bytes means the peer closed, so empty messages are refused
// on send.
#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

#include "errors.h"
#include "registry.h"

namespace offpath {
namespace {

constexpr size_t kMaxFdsPerMessage = 32;
constexpr int64_t kMaxMessageBytes = 1 << 20;

sockaddr_un SocketAddress(Napi::Env env, const std::string& path) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.empty() || path.size() >= sizeof address.sun_path)
    ThrowRange(env, "socket path must be 1.." + std::to_string(sizeof address.sun_path - 1) + " bytes");
  memcpy(address.sun_path, path.data(), path.size());
  return address;
}

// seqpacketListen(path, { backlog = 64, mode = 0o600 }) -> fd
Napi::Value Listen(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  std::string path = ArgString(info, 0, "path");
  int backlog = 64;
  mode_t mode = 0600;
  if (info.Length() > 1 && info[1].IsObject()) {
    auto options = info[1].As<Napi::Object>();
    if (options.Has("backlog")) backlog = options.Get("backlog").ToNumber().Int32Value();
    if (options.Has("mode")) mode = static_cast<mode_t>(options.Get("mode").ToNumber().Uint32Value() & 07777);
  }
  sockaddr_un address = SocketAddress(env, path);
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  // chmod between bind and listen: until listen() nobody can connect, so the
  // socket is never reachable with looser permissions than asked for.
  const char* failed = nullptr;
  if (bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address) != 0) failed = "bind";
  else if (chmod(path.c_str(), mode) != 0) failed = "chmod";
  else if (listen(fd, backlog) != 0) failed = "listen";
  if (failed != nullptr) {
    int err = errno;
    close(fd);
    ThrowErrno(env, failed, err);
  }
  return Napi::Number::New(env, fd);
}

// seqpacketConnect(path) -> fd
Napi::Value Connect(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  sockaddr_un address = SocketAddress(env, ArgString(info, 0, "path"));
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(env, "socket", errno);
  // A local connect completes at once (or fails), so it is done blocking and
  // the socket is switched to non-blocking afterwards.
  int rc;
  do rc = connect(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  while (rc != 0 && errno == EINTR);
  if (rc != 0 || fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0) {
    int err = errno;
    close(fd);
    ThrowErrno(env, "connect", err);
  }
  return Napi::Number::New(env, fd);
}

// seqpacketPair() -> [fd, fd]: a connected pair, e.g. for a child process.
Napi::Value Pair(const Napi::CallbackInfo& info) {
  int fds[2];
  if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) != 0)
    ThrowErrno(info.Env(), "socketpair", errno);
  auto result = Napi::Array::New(info.Env(), 2);
  result.Set(0u, fds[0]);
  result.Set(1u, fds[1]);
  return result;
}

// seqpacketAccept(listenFd) -> fd, or null when no connection is pending.
Napi::Value Accept(const Napi::CallbackInfo& info) {
  int listen_fd = ArgFd(info, 0, "fd");
  for (;;) {
    int fd = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (fd >= 0) return Napi::Number::New(info.Env(), fd);
    if (errno == EAGAIN || errno == ECONNABORTED) return info.Env().Null();
    if (errno != EINTR) ThrowErrno(info.Env(), "accept4", errno);
  }
}

// seqpacketSend(fd, bytes, fds = []) -> bytes sent, or null if it would block.
Napi::Value Send(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  ByteSpan bytes = ArgBytes(info, 1, "data");
  if (bytes.length == 0) ThrowRange(env, "data must not be empty (a 0-byte message reads as end of stream)");
  if (bytes.length > static_cast<size_t>(kMaxMessageBytes)) ThrowRange(env, "data is larger than 1 MiB");
  std::vector<int> fds;
  if (info.Length() > 2 && !info[2].IsUndefined()) {
    if (!info[2].IsArray()) ThrowType(env, "fds must be an array of file descriptors");
    auto array = info[2].As<Napi::Array>();
    if (array.Length() > kMaxFdsPerMessage) ThrowRange(env, "at most 32 fds per message");
    for (uint32_t i = 0; i < array.Length(); i++) {
      Napi::Value value = array.Get(i);
      if (!value.IsNumber() || value.As<Napi::Number>().Int32Value() < 0)
        ThrowType(env, "fds must be an array of file descriptors");
      fds.push_back(value.As<Napi::Number>().Int32Value());
    }
  }
  iovec iov{bytes.data, bytes.length};
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  if (!fds.empty()) {
    message.msg_control = control;
    message.msg_controllen = CMSG_SPACE(sizeof(int) * fds.size());
    cmsghdr* header = CMSG_FIRSTHDR(&message);
    header->cmsg_level = SOL_SOCKET;
    header->cmsg_type = SCM_RIGHTS;
    header->cmsg_len = CMSG_LEN(sizeof(int) * fds.size());
    memcpy(CMSG_DATA(header), fds.data(), sizeof(int) * fds.size());
  }
  for (;;) {
    ssize_t sent = sendmsg(fd, &message, MSG_NOSIGNAL);
    if (sent >= 0) return Napi::Number::New(env, static_cast<double>(sent));
    if (errno == EAGAIN) return env.Null();
    if (errno != EINTR) ThrowErrno(env, "sendmsg", errno);
  }
}

// seqpacketRecv(fd, maxBytes = 65536) -> { data: Buffer, fds: number[] }, or
// null if nothing is pending. data.length === 0 means the peer closed.
// Received fds are close-on-exec (MSG_CMSG_CLOEXEC) and owned by the caller.
Napi::Value Recv(const Napi::CallbackInfo& info) {
  auto env = info.Env();
  int fd = ArgFd(info, 0, "fd");
  auto max_bytes = static_cast<size_t>(OptInteger(info, 1, "maxBytes", 1, kMaxMessageBytes, 65536));
  std::vector<uint8_t> buffer(max_bytes);
  iovec iov{buffer.data(), buffer.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(int) * kMaxFdsPerMessage)];
  msghdr message{};
  message.msg_iov = &iov;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t received;
  for (;;) {
    received = recvmsg(fd, &message, MSG_CMSG_CLOEXEC);
    if (received >= 0) break;
    if (errno == EAGAIN) return env.Null();
    if (errno != EINTR) ThrowErrno(env, "recvmsg", errno);
  }
  std::vector<int> fds;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level != SOL_SOCKET || header->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (header->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; i++) {
      int received_fd;
      memcpy(&received_fd, CMSG_DATA(header) + i * sizeof(int), sizeof(int));
      fds.push_back(received_fd);
    }
  }
  // A truncated message or fd list is an error: the request cannot be
  // trusted, and fds we did get must not leak.
  if (message.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
    for (int received_fd : fds) close(received_fd);
    ThrowStorage(env, "EMSGSIZE",
                 (message.msg_flags & MSG_TRUNC) ? "recvmsg: message larger than maxBytes"
                                                 : "recvmsg: more than 32 fds in one message");
  }
  auto result = Napi::Object::New(env);
  result.Set("data", Napi::Buffer<uint8_t>::Copy(env, buffer.data(), static_cast<size_t>(received)));
  auto fd_array = Napi::Array::New(env, fds.size());
  for (size_t i = 0; i < fds.size(); i++) fd_array.Set(static_cast<uint32_t>(i), fds[i]);
  result.Set("fds", fd_array);
  return result;
}

// peerCredentials(fd) -> { pid, uid, gid } of the process that connected
// (or created the pair), as the kernel recorded them at connect time.
Napi::Value PeerCredentials(const Napi::CallbackInfo& info) {
  ucred credentials{};
  socklen_t length = sizeof credentials;
  if (getsockopt(ArgFd(info, 0, "fd"), SOL_SOCKET, SO_PEERCRED, &credentials, &length) != 0)
    ThrowErrno(info.Env(), "getsockopt(SO_PEERCRED)", errno);
  auto result = Napi::Object::New(info.Env());
  result.Set("pid", credentials.pid);
  result.Set("uid", credentials.uid);
  result.Set("gid", credentials.gid);
  return result;
}

// closeFd(fd): close a descriptor received or created here. Node's
// fs.closeSync works too; this one never touches libuv's fd bookkeeping.
Napi::Value CloseFd(const Napi::CallbackInfo& info) {
  if (close(ArgFd(info, 0, "fd")) != 0 && errno != EINTR) ThrowErrno(info.Env(), "close", errno);
  return info.Env().Undefined();
}

// dupFd(fd) -> a new close-on-exec descriptor for the same open file: a
// thread that keeps using a descriptor another thread may close takes its own.
Napi::Value DupFd(const Napi::CallbackInfo& info) {
  int fd = fcntl(ArgFd(info, 0, "fd"), F_DUPFD_CLOEXEC, 0);
  if (fd < 0) ThrowErrno(info.Env(), "fcntl(F_DUPFD_CLOEXEC)", errno);
  return Napi::Number::New(info.Env(), fd);
}

}  // namespace

void RegisterSeqpacket(Napi::Env env, Napi::Object exports) {
  exports.Set("seqpacketListen", Napi::Function::New(env, Listen, "seqpacketListen"));
  exports.Set("seqpacketConnect", Napi::Function::New(env, Connect, "seqpacketConnect"));
  exports.Set("seqpacketPair", Napi::Function::New(env, Pair, "seqpacketPair"));
  exports.Set("seqpacketAccept", Napi::Function::New(env, Accept, "seqpacketAccept"));
  exports.Set("seqpacketSend", Napi::Function::New(env, Send, "seqpacketSend"));
  exports.Set("seqpacketRecv", Napi::Function::New(env, Recv, "seqpacketRecv"));
  exports.Set("peerCredentials", Napi::Function::New(env, PeerCredentials, "peerCredentials"));
  exports.Set("closeFd", Napi::Function::New(env, CloseFd, "closeFd"));
  exports.Set("dupFd", Napi::Function::New(env, DupFd, "dupFd"));
}

}  // namespace offpath
