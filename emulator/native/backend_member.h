// One member of a store's pool: a byte-addressable backing (anonymous memory,
// a regular file, or a block device opened O_DIRECT) that the store carves
// into chunks. The store never touches a member's fd or memory directly; it
// goes through this interface, and every change to a member's bytes — data,
// metadata, zeroing — goes through the single Write() entry point. That is
// deliberate: a fault-injection layer (e.g. a future power-loss simulation
// that tracks which bytes are volatile until Sync and drops or tears them)
// can wrap any member and see every mutation and every durability point.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <memory>
#include <string>

namespace offpath::emu {

struct MemberWrite {
  uint64_t offset_bytes = 0;
  uint64_t length_bytes = 0;
  // The bytes to write; nullptr means "make the range read as zeroes".
  const struct iovec* iov = nullptr;
  int iov_count = 0;
  // On stable storage before Write returns (FUA semantics for this range).
  bool durable = false;
  // Zeroing only: succeed only if the backing can zero without writing every
  // byte (punch hole / discard); otherwise return -EOPNOTSUPP and change
  // nothing. Lets a format decide between "zero now" and "zero lazily".
  bool zero_only_if_cheap = false;
};

class BackendMember {
 public:
  virtual ~BackendMember() = default;

  virtual const std::string& path() const = 0;
  virtual uint64_t size_bytes() const = 0;
  // True when completed writes may sit in a volatile cache until Sync.
  virtual bool volatile_cache() const = 0;

  // Reads exactly length_bytes at offset_bytes into the iovecs (which hold
  // exactly length_bytes). Returns 0 or -errno.
  virtual int Read(uint64_t offset_bytes, const struct iovec* iov, int iov_count,
                   uint64_t length_bytes) = 0;
  // The only way bytes of the member change. Returns 0 or -errno.
  virtual int Write(const MemberWrite& write) = 0;
  // Makes every completed Write durable. Returns 0 or -errno.
  virtual int Sync() = 0;
};

// One contiguous buffer read from / written to a member. Return 0 or -errno.
inline int ReadAt(BackendMember* member, uint64_t offset, uint8_t* buffer, uint64_t length) {
  struct iovec iov = {buffer, length};
  return member->Read(offset, &iov, 1, length);
}

inline int WriteAt(BackendMember* member, uint64_t offset, const uint8_t* buffer, uint64_t length) {
  struct iovec iov = {const_cast<uint8_t*>(buffer), length};
  MemberWrite write;
  write.offset_bytes = offset;
  write.length_bytes = length;
  write.iov = &iov;
  write.iov_count = 1;
  return member->Write(write);
}

// Why opening a member failed: an errno name ("ENOENT") or a store code, and
// a message naming the path.
struct OpenFailure {
  std::string code;
  std::string message;
};

std::unique_ptr<BackendMember> OpenMemoryMember(uint64_t size_bytes, OpenFailure* failure);

// A regular file, read and written through the page cache. With create and a
// non-zero create_size_bytes a missing file is created sparse at that size;
// *created tells the caller it is known to hold only zeroes.
std::unique_ptr<BackendMember> OpenFileMember(const std::string& path, bool create,
                                              uint64_t create_size_bytes, bool* created,
                                              OpenFailure* failure);

// A block device (or, for testing, an existing regular file on a filesystem
// that supports it) opened O_DIRECT: no page cache, so misaligned I/O is
// bounced through aligned buffers.
std::unique_ptr<BackendMember> OpenBlockMember(const std::string& path, OpenFailure* failure);

}  // namespace offpath::emu
