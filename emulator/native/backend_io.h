// Helpers shared by the fd-based members: complete positional vector I/O
// (the kernel may transfer less than asked, and IOV_MAX caps one call),
// writing zeroes, and the open-time chores every member does.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <string>

#include "backend_member.h"

namespace offpath::emu {

// Transfers exactly length_bytes; returns 0 or -errno (-EIO for an
// unexpected end of file). flags are pwritev2 flags (RWF_DSYNC).
int PreadvFully(int fd, const struct iovec* iov, int iov_count, uint64_t offset_bytes,
                uint64_t length_bytes);
int PwritevFully(int fd, const struct iovec* iov, int iov_count, uint64_t offset_bytes,
                 uint64_t length_bytes, int flags);

// Writes length_bytes of zeroes with ordinary writes (the fallback when the
// filesystem or device cannot punch holes). The source buffer is page
// aligned and its size a multiple of any logical block size, so the writes
// stay O_DIRECT-legal whenever offset and length are.
int WriteZeroBytes(int fd, uint64_t offset_bytes, uint64_t length_bytes);

// Exclusive advisory lock so two stores (in this or another process) never
// open one pool member at once. Fills failure and returns false when held.
bool LockMember(int fd, const std::string& path, OpenFailure* failure);

// "ENOENT" etc.
std::string ErrnoName(int err);
OpenFailure ErrnoFailure(int err, const std::string& what, const std::string& path);

}  // namespace offpath::emu
