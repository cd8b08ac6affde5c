// The sealed init memfd (CVE-2019-5736): the init binary is copied once per process into a memfd sealed
// against writes, and the child execveats that, so a container can never write to the host's binary.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <map>
#include <mutex>

#include "spawn_parent.h"

#ifndef MFD_EXEC
#define MFD_EXEC 0x0010U
#endif

namespace tsb {
namespace {

struct CachedInit {
  dev_t dev;
  ino_t ino;
  off_t size;
  struct timespec mtime;
  int fd;
};

std::mutex gInitMutex;
std::map<std::string, CachedInit> gInitCache;

// Records errno under `syscall`, closes the given fds, returns -1.
int Fail(Failure* failure, const char* syscall, const std::string& path, int err, int fd1 = -1, int fd2 = -1) {
  *failure = Failure{err, syscall, path, ""};
  if (fd1 >= 0) close(fd1);
  if (fd2 >= 0) close(fd2);
  return -1;
}

}  // namespace

int InitMemfd(const std::string& path, Failure* failure) {
  std::lock_guard<std::mutex> lock(gInitMutex);
  struct stat st;
  if (stat(path.c_str(), &st) != 0) return Fail(failure, "stat", path, errno);
  auto it = gInitCache.find(path);
  if (it != gInitCache.end() && it->second.dev == st.st_dev && it->second.ino == st.st_ino &&
      it->second.size == st.st_size && it->second.mtime.tv_sec == st.st_mtim.tv_sec &&
      it->second.mtime.tv_nsec == st.st_mtim.tv_nsec)
    return it->second.fd;
  int src = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (src < 0) return Fail(failure, "open", path, errno);
  int mfd = memfd_create("tsbuild-init", MFD_CLOEXEC | MFD_ALLOW_SEALING | MFD_EXEC);
  if (mfd < 0 && errno == EINVAL) mfd = memfd_create("tsbuild-init", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (mfd < 0) return Fail(failure, "memfd_create", path, errno, src);
  off_t left = st.st_size;
  while (left > 0) {
    ssize_t n = sendfile(mfd, src, nullptr, (size_t)left);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Fail(failure, "sendfile", path, n < 0 ? errno : EIO, src, mfd);
    left -= n;
  }
  close(src);
  if (fcntl(mfd, F_ADD_SEALS, F_SEAL_SEAL | F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE) != 0)
    return Fail(failure, "fcntl(F_ADD_SEALS)", path, errno, mfd);
  // A replaced binary gets a new memfd; the old one stays open (a concurrent spawn may be using it).
  gInitCache[path] = CachedInit{st.st_dev, st.st_ino, st.st_size, st.st_mtim, mfd};
  return mfd;
}

}  // namespace tsb
