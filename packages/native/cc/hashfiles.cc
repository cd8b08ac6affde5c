// hashFiles: the SHA-256 of a batch of small regular files, computed on a libuv pool thread (OpenSSL's,
// from node's own headers and symbols), so that the context hash of many files runs on a second core.
// For each file: open O_NOFOLLOW (and O_NONBLOCK: a fifo swapped in since the walk must not block a pool
// thread), fstat, refuse anything but a regular file, read and hash to its end, fstat again, close; the two stats
// let the caller trust (and cache) only a read that saw a stable file. The batch stops at the first
// failure and says which file failed and how.
#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
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

constexpr size_t kReadBuffer = 256 * 1024;
constexpr size_t kDigest = 32;
// Per file in the stats array: dev, ino, size, mtime ns, ctime ns, mode; before the read, then after.
constexpr size_t kStatFields = 6;

void PutStat(const struct stat& st, int64_t* out) {
  out[0] = static_cast<int64_t>(st.st_dev);
  out[1] = static_cast<int64_t>(st.st_ino);
  out[2] = static_cast<int64_t>(st.st_size);
  out[3] = static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
  out[4] = static_cast<int64_t>(st.st_ctim.tv_sec) * 1000000000 + st.st_ctim.tv_nsec;
  out[5] = static_cast<int64_t>(st.st_mode);
}

struct DigestCtx {
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  ~DigestCtx() { EVP_MD_CTX_free(ctx); }
};

// One file into `digest` (32 bytes) and `stats` (2 * kStatFields).
Failure HashOne(const std::string& path, uint8_t* digest, int64_t* stats) {
  thread_local std::vector<char> buf(kReadBuffer);
  thread_local DigestCtx md;
  int fd;
  do fd = open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC);
  while (fd < 0 && errno == EINTR);
  if (fd < 0) return {errno, "open", path, ""};
  Fd file(fd);
  struct stat before, after;
  if (fstat(fd, &before) != 0) return {errno, "fstat", path, ""};
  if (!S_ISREG(before.st_mode)) return NotRegularFile(before.st_mode, path);
  if (md.ctx == nullptr || EVP_DigestInit_ex(md.ctx, EVP_sha256(), nullptr) != 1) return {ENOMEM, "EVP_DigestInit_ex", path, ""};
  // To the end; a short read that ends exactly at the size fstat gave is taken as the end.
  for (off_t total = 0;;) {
    ssize_t n = read(fd, buf.data(), buf.size());
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return {errno, "read", path, ""};
    if (n == 0) break;
    EVP_DigestUpdate(md.ctx, buf.data(), n);
    total += n;
    if (static_cast<size_t>(n) < buf.size() && total == before.st_size) break;
  }
  if (fstat(fd, &after) != 0) return {errno, "fstat", path, ""};
  unsigned int len = 0;
  EVP_DigestFinal_ex(md.ctx, digest, &len);
  PutStat(before, stats);
  PutStat(after, stats + kStatFields);
  return {};
}

class HashFilesWorker : public Napi::AsyncWorker {
 public:
  HashFilesWorker(Napi::Env env, std::vector<std::string> paths)
      : Napi::AsyncWorker(env, "tsbuild:hashFiles"),
        deferred_(Napi::Promise::Deferred::New(env)),
        paths_(std::move(paths)),
        digests_(paths_.size() * kDigest),
        stats_(paths_.size() * 2 * kStatFields) {}

  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override {
    for (; done_ < paths_.size(); done_++) {
      failure_ = HashOne(paths_[done_], &digests_[done_ * kDigest], &stats_[done_ * 2 * kStatFields]);
      if (failure_) return;
    }
  }

  // { done, digests: Buffer (32 bytes a file), stats: BigInt64Array (12 a file), error }.
  void OnOK() override {
    Napi::Env env = Env();
    Napi::Object out = Napi::Object::New(env);
    out.Set("done", Napi::Number::New(env, static_cast<double>(done_)));
    out.Set("digests", Napi::Buffer<uint8_t>::Copy(env, digests_.data(), digests_.size()));
    Napi::ArrayBuffer bytes = Napi::ArrayBuffer::New(env, stats_.size() * sizeof(int64_t));
    std::copy(stats_.begin(), stats_.end(), static_cast<int64_t*>(bytes.Data()));
    out.Set("stats", Napi::TypedArrayOf<int64_t>::New(env, stats_.size(), bytes, 0, napi_bigint64_array));
    out.Set("error", failure_ ? SystemError(env, failure_).Value() : env.Null());
    deferred_.Resolve(out);
  }

 private:
  Napi::Promise::Deferred deferred_;
  std::vector<std::string> paths_;
  std::vector<uint8_t> digests_;
  std::vector<int64_t> stats_;
  size_t done_ = 0;
  Failure failure_;
};

// hashFiles(paths: (string|Buffer)[]): Promise.
Napi::Value HashFiles(const Napi::CallbackInfo& info) {
  std::vector<PathBytes> list = Args(info, "hashFiles").List<PathBytes>(0, "paths");
  std::vector<std::string> paths;
  paths.reserve(list.size());
  for (auto& p : list) paths.push_back(std::move(p.bytes));
  return QueueWorker<HashFilesWorker>(info.Env(), std::move(paths));
}

}  // namespace

void InitHashFiles(Napi::Env env, Napi::Object exports) { Register(env, exports, {{"hashFiles", HashFiles}}); }

}  // namespace tsb
