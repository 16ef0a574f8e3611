#include "backend_io.h"

#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <vector>

namespace offpath::emu {
namespace {

// One helper for both directions: each call moves at most IOV_MAX segments,
// and a short transfer re-slices the iovecs into a private copy (rare, so
// the common path allocates nothing).
template <typename Transfer>
int TransferFully(const struct iovec* iov, int iov_count, uint64_t offset_bytes,
                  uint64_t length_bytes, Transfer transfer) {
  std::vector<struct iovec> rest;
  const struct iovec* cursor = iov;
  int remaining_segments = iov_count;
  uint64_t remaining_bytes = length_bytes;
  while (remaining_bytes > 0) {
    if (remaining_segments <= 0) return -EINVAL;  // iovecs shorter than length_bytes
    int batch = std::min(remaining_segments, IOV_MAX);
    ssize_t done = transfer(cursor, batch, static_cast<off_t>(offset_bytes));
    if (done < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    if (done == 0) return -EIO;  // past the end of a file someone truncated
    auto moved = static_cast<uint64_t>(done);
    offset_bytes += moved;
    remaining_bytes -= std::min(moved, remaining_bytes);
    // Step over the whole segments that were transferred.
    int skip = 0;
    while (skip < remaining_segments && moved >= cursor[skip].iov_len) {
      moved -= cursor[skip].iov_len;
      ++skip;
    }
    if (moved == 0) {
      cursor += skip;
      remaining_segments -= skip;
      continue;
    }
    // A segment was cut in the middle: continue from a trimmed copy.
    rest.assign(cursor + skip, cursor + remaining_segments);
    rest[0].iov_base = static_cast<uint8_t*>(rest[0].iov_base) + moved;
    rest[0].iov_len -= moved;
    cursor = rest.data();
    remaining_segments = static_cast<int>(rest.size());
  }
  return 0;
}

}  // namespace

int PreadvFully(int fd, const struct iovec* iov, int iov_count, uint64_t offset_bytes,
                uint64_t length_bytes) {
  return TransferFully(iov, iov_count, offset_bytes, length_bytes,
                       [fd](const struct iovec* v, int n, off_t at) { return preadv(fd, v, n, at); });
}

int PwritevFully(int fd, const struct iovec* iov, int iov_count, uint64_t offset_bytes,
                 uint64_t length_bytes, int flags) {
  return TransferFully(iov, iov_count, offset_bytes, length_bytes,
                       [fd, flags](const struct iovec* v, int n, off_t at) {
                         return pwritev2(fd, v, n, at, flags);
                       });
}

int WriteZeroBytes(int fd, uint64_t offset_bytes, uint64_t length_bytes) {
  constexpr size_t kBufferBytes = 256 * 1024;
  // One zeroed, page-aligned buffer for the life of the process: never
  // written after creation, so all threads may share it.
  static uint8_t* zeroes = [] {
    void* memory = nullptr;
    if (posix_memalign(&memory, 4096, kBufferBytes) != 0) return static_cast<uint8_t*>(nullptr);
    memset(memory, 0, kBufferBytes);
    return static_cast<uint8_t*>(memory);
  }();
  if (zeroes == nullptr) return -ENOMEM;
  while (length_bytes > 0) {
    uint64_t piece = std::min<uint64_t>(length_bytes, kBufferBytes);
    struct iovec iov = {zeroes, piece};
    int rc = PwritevFully(fd, &iov, 1, offset_bytes, piece, 0);
    if (rc != 0) return rc;
    offset_bytes += piece;
    length_bytes -= piece;
  }
  return 0;
}

bool LockMember(int fd, const std::string& path, OpenFailure* failure) {
  for (;;) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) return true;
    if (errno == EINTR) continue;
    if (errno == EWOULDBLOCK) {
      *failure = {"EBUSY", path + " is already open by another store (in this or another process)"};
    } else {
      *failure = ErrnoFailure(errno, "flock", path);
    }
    return false;
  }
}

std::string ErrnoName(int err) {
  const char* name = strerrorname_np(err);
  return name != nullptr ? name : "E" + std::to_string(err);
}

OpenFailure ErrnoFailure(int err, const std::string& what, const std::string& path) {
  return {ErrnoName(err), what + " " + path + ": " + strerror(err)};
}

}  // namespace offpath::emu
