// copyFiles: a batch of small regular files copied on a libuv pool thread, so that COPY's per-file
// syscalls (two opens, read/write, fchown, fchmod, futimens, closes) run on a second core while the JS
// thread goes on walking and creating directories. Each file is copied as the JS side did one at a time:
// the target created O_EXCL, owner, mode and times set through its descriptor. The batch stops at the
// first failure and says which file failed and how, so the caller can handle it (an existing target is
// replaced by the JS path) or name it.
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <cerrno>
#include <string>
#include <vector>

#include "args.h"
#include "async.h"
#include "errors.h"
#include "module.h"

namespace tsb {
namespace {

// Per file in `meta`: mode, uid, gid, mtime seconds, mtime nanoseconds.
constexpr size_t kMetaFields = 5;
constexpr size_t kCopyBuffer = 256 * 1024;

int OpenRetrying(const char* path, int flags, mode_t mode) {
  int fd;
  do fd = open(path, flags, mode);
  while (fd < 0 && errno == EINTR);
  return fd;
}

// Copies `src` to `dst` to its end; returns 0 or the errno, with the failing call in `syscall`.
int CopyContent(int src, int dst, const char** syscall) {
  thread_local std::vector<char> buf(kCopyBuffer);
  for (;;) {
    ssize_t n = read(src, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return *syscall = "read", errno;
    if (n == 0) return 0;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(dst, buf.data() + off, n - off);
      if (w < 0 && errno == EINTR) continue;
      if (w < 0) return *syscall = "write", errno;
      off += w;
    }
  }
}

struct FileCopy {
  std::string source, target;
  mode_t mode;
  uid_t uid;
  gid_t gid;
  struct timespec mtime;
};

// One file; on failure returns it with the path the failing call was about.
Failure CopyOne(const FileCopy& f, bool* hasXattrs) {
  int src = OpenRetrying(f.source.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
  if (src < 0) return {errno, "open", f.source, ""};
  Fd srcFd(src);
  if (Failure notFile = RequireRegularFile(src, f.source)) return notFile;
  int dst = OpenRetrying(f.target.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (dst < 0) return {errno, "open", f.target, ""};
  Fd dstFd(dst);
  const char* syscall = "";
  if (int err = CopyContent(src, dst, &syscall)) return {err, syscall, syscall[0] == 'r' ? f.source : f.target, ""};
  if (fchown(dst, f.uid, f.gid) != 0) return {errno, "fchown", f.target, ""};
  if (fchmod(dst, f.mode) != 0) return {errno, "fchmod", f.target, ""};  // after chown: it clears setuid/setgid
  // Extended attributes are copied by the caller (it filters their names); only whether there are any.
  *hasXattrs = flistxattr(src, nullptr, 0) > 0;
  struct timespec times[2] = {f.mtime, f.mtime};
  if (futimens(dst, times) != 0) return {errno, "futimens", f.target, ""};
  if (close(dstFd.release()) != 0) return {errno, "close", f.target, ""};
  return {};
}

class CopyFilesWorker : public Napi::AsyncWorker {
 public:
  CopyFilesWorker(Napi::Env env, std::vector<FileCopy> files)
      : Napi::AsyncWorker(env, "tsbuild:copyFiles"),
        deferred_(Napi::Promise::Deferred::New(env)),
        files_(std::move(files)),
        xattrs_(files_.size(), 0) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    for (; done_ < files_.size(); done_++) {
      bool has = false;
      failure_ = CopyOne(files_[done_], &has);
      if (failure_) return;
      xattrs_[done_] = has ? 1 : 0;
    }
  }

  // { done, xattrs, error }: files [0, done) were copied; xattrs[i] is 1 where the source has any;
  // error (a SystemError) is about file `done`, or null.
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("done", Napi::Number::New(env, static_cast<double>(done_)));
    out.Set("xattrs", Napi::Buffer<uint8_t>::Copy(env, xattrs_.data(), xattrs_.size()));
    out.Set("error", failure_ ? SystemError(env, failure_).Value() : env.Null());
    deferred_.Resolve(out);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<FileCopy> files_;
  std::vector<uint8_t> xattrs_;
  size_t done_ = 0;
  Failure failure_;
};

// copyFiles(sources: (string|Buffer)[], targets: (string|Buffer)[], meta: Float64Array): Promise.
Napi::Value CopyFiles(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "copyFiles");
  std::vector<PathBytes> sources = args.List<PathBytes>(0, "sources"), targets = args.List<PathBytes>(1, "targets");
  if (!info[2].IsTypedArray() || info[2].As<Napi::TypedArray>().TypedArrayType() != napi_float64_array)
    ThrowTypeError(env, "copyFiles", "meta", "a Float64Array", info[2]);
  Napi::Float64Array meta = info[2].As<Napi::Float64Array>();
  size_t count = sources.size();
  if (targets.size() != count || meta.ElementLength() != count * kMetaFields)
    throw Napi::RangeError::New(env, "copyFiles: sources, targets and meta (5 numbers a file) must describe as many files");
  std::vector<FileCopy> files(count);
  for (size_t i = 0; i < count; i++) {
    const double* m = meta.Data() + i * kMetaFields;
    files[i] = {std::move(sources[i].bytes), std::move(targets[i].bytes), static_cast<mode_t>(m[0]),
                static_cast<uid_t>(m[1]), static_cast<gid_t>(m[2]),
                {static_cast<time_t>(m[3]), static_cast<long>(m[4])}};
  }
  return QueueWorker<CopyFilesWorker>(env, std::move(files));
}

}  // namespace

void InitCopyFiles(Napi::Env env, Napi::Object exports) { Register(env, exports, {{"copyFiles", CopyFiles}}); }

}  // namespace tsb
