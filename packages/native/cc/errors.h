// Errors thrown to JS carry code (errno name), errno, syscall and path, like Node's own SystemErrors.
#pragma once
#include <napi.h>
#include <string>

namespace tsb {

// A failed syscall as plain data: recorded on any thread (an AsyncWorker's pool thread), turned into
// an Error on the JS thread. `err` is saved right after the failing call, before anything else (a
// read of the kernel log, a string copy) can overwrite errno.
struct Failure {
  int err = 0;
  const char* syscall = "";
  std::string path, detail;
  explicit operator bool() const { return err != 0; }
};

// A source opened as a regular file (O_NONBLOCK, so that a fifo swapped in does not block) that is
// something else: EISDIR for a directory, else EINVAL, under `syscall` "open", naming the path and type.
Failure NotRegularFile(unsigned int mode, const std::string& path);
// fstat(fd), then NotRegularFile unless it is a regular file; an empty Failure when it is one.
Failure RequireRegularFile(int fd, const std::string& path);

const char* ErrnoName(int err);
// "ENOENT: No such file or directory, mount '/target': detail", with code, errno, syscall and path set.
Napi::Error SystemError(Napi::Env env, int err, const char* syscall, const std::string& path = "",
                        const std::string& detail = "");
Napi::Error SystemError(Napi::Env env, const Failure& failure);
// The same fields under a message given whole (spawn's child failures read as sentences).
Napi::Error SystemErrorWithMessage(Napi::Env env, const std::string& message, int err, const std::string& syscall,
                                   const std::string& path);
[[noreturn]] void ThrowSystemError(Napi::Env env, int err, const char* syscall, const std::string& path = "",
                                   const std::string& detail = "");
}  // namespace tsb
