// The file member: a regular file used through the page cache. Files are
// sparse: a chunk costs disk space only once written, and zeroing a range
// punches a hole (space goes back to the filesystem) where supported.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "backend_io.h"
#include "backend_member.h"

namespace offpath::emu {
namespace {

int SyncFd(int fd) {
  while (fdatasync(fd) != 0) {
    if (errno != EINTR) return -errno;
  }
  return 0;
}

class FileMember final : public BackendMember {
 public:
  FileMember(int fd, std::string path, uint64_t size_bytes)
      : fd_(fd), path_(std::move(path)), size_bytes_(size_bytes) {}
  ~FileMember() override { close(fd_); }

  const std::string& path() const override { return path_; }
  uint64_t size_bytes() const override { return size_bytes_; }
  bool volatile_cache() const override { return true; }

  int Read(uint64_t offset_bytes, const struct iovec* iov, int iov_count,
           uint64_t length_bytes) override {
    return PreadvFully(fd_, iov, iov_count, offset_bytes, length_bytes);
  }

  int Write(const MemberWrite& write) override {
    if (write.iov == nullptr) return Zero(write);
    // RWF_DSYNC makes just this write durable (data and the file metadata
    // needed to read it back) without a separate fdatasync round trip.
    int rc = PwritevFully(fd_, write.iov, write.iov_count, write.offset_bytes, write.length_bytes,
                          write.durable ? RWF_DSYNC : 0);
    if (rc == -EOPNOTSUPP && write.durable) {
      rc = PwritevFully(fd_, write.iov, write.iov_count, write.offset_bytes, write.length_bytes, 0);
      if (rc == 0) rc = SyncFd(fd_);
    }
    return rc;
  }

  int Sync() override { return SyncFd(fd_); }

 private:
  int Zero(const MemberWrite& write) {
    if (write.length_bytes == 0) return 0;
    if (punch_supported_.load(std::memory_order_relaxed)) {
      if (fallocate(fd_, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
                    static_cast<off_t>(write.offset_bytes), static_cast<off_t>(write.length_bytes)) == 0)
        return write.durable ? SyncFd(fd_) : 0;
      if (errno != EOPNOTSUPP && errno != ENOSYS) return -errno;
      punch_supported_.store(false, std::memory_order_relaxed);
    }
    if (write.zero_only_if_cheap) return -EOPNOTSUPP;
    int rc = WriteZeroBytes(fd_, write.offset_bytes, write.length_bytes);
    if (rc == 0 && write.durable) rc = SyncFd(fd_);
    return rc;
  }

  int fd_;
  std::string path_;
  uint64_t size_bytes_;
  std::atomic<bool> punch_supported_{true};
};

}  // namespace

std::unique_ptr<BackendMember> OpenFileMember(const std::string& path, bool create,
                                              uint64_t create_size_bytes, bool* created,
                                              OpenFailure* failure) {
  *created = false;
  int fd = open(path.c_str(), O_RDWR | O_CLOEXEC);
  if (fd < 0 && errno == ENOENT && create) {
    if (create_size_bytes == 0) {
      *failure = {"ENOENT", path + " does not exist; pass sizeBytes to create it"};
      return nullptr;
    }
    fd = open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
      *failure = ErrnoFailure(errno, "cannot create", path);
      return nullptr;
    }
    if (ftruncate(fd, static_cast<off_t>(create_size_bytes)) != 0) {
      *failure = ErrnoFailure(errno, "cannot size", path);
      close(fd);
      unlink(path.c_str());
      return nullptr;
    }
    *created = true;
  }
  if (fd < 0) {
    if (errno == ENOENT)
      *failure = {"ENOENT", path + " does not exist (pass create: true and sizeBytes to create it)"};
    else
      *failure = ErrnoFailure(errno, "cannot open", path);
    return nullptr;
  }
  struct stat status {};
  if (fstat(fd, &status) != 0) {
    *failure = ErrnoFailure(errno, "cannot stat", path);
    close(fd);
    return nullptr;
  }
  if (!S_ISREG(status.st_mode)) {
    *failure = {"EINVAL", path + " is not a regular file (use kind 'block' for a block device)"};
    close(fd);
    return nullptr;
  }
  if (status.st_size <= 0) {
    *failure = {"EINVAL", path + " is empty; give it a size (or delete it and pass sizeBytes)"};
    close(fd);
    return nullptr;
  }
  if (!LockMember(fd, path, failure)) {
    close(fd);
    return nullptr;
  }
  return std::make_unique<FileMember>(fd, path, static_cast<uint64_t>(status.st_size));
}

}  // namespace offpath::emu
