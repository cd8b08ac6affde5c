// spawn(): clone3 a child into new namespaces from a libuv pool thread, run the prepared setup steps in
// it, execve; then watch its pidfd in the event loop. This file is the AsyncWorker that ties the
// concerns together (see spawn_parent.h) and the exports.
#include <fcntl.h>
#include <sys/resource.h>

#include <cmath>
#include <memory>

#include "args.h"
#include "module.h"
#include "spawn_parent.h"

namespace tsb {
namespace {

class SpawnWorker : public Napi::AsyncWorker {
 public:
  // Throws (a TypeError naming the key) before anything is queued when the spec is malformed.
  SpawnWorker(Napi::Env env, const Napi::Value& spec, Napi::Function onExit)
      : Napi::AsyncWorker(env, "tsbuild:spawn"), deferred_(Napi::Promise::Deferred::New(env)),
        request_(std::make_unique<SpawnRequest>()) {
    ParseSpawnRequest(env, spec, *request_);
    onExit_ = Napi::Persistent(onExit);
  }
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  void Execute() override { result_ = Launch(*request_); }
  void OnOK() override {
    Napi::Env env = Env();
    if (result_.parent) {
      Napi::Error err = SystemError(env, result_.parent);
      err.Set("exitCode", Napi::Number::New(env, 125));
      deferred_.Reject(err.Value());
      return;
    }
    if (result_.childFailed) {
      deferred_.Reject(ChildFailure(env, *request_, result_.child).Value());
      return;
    }
    try {
      deferred_.Resolve(WatchProcess(env, result_.pid, result_.pidfd, result_.terminalFd, std::move(onExit_)));
    } catch (const Napi::Error& e) {
      deferred_.Reject(e.Value());
    }
  }

 private:
  Napi::Promise::Deferred deferred_;
  Napi::FunctionReference onExit_;
  std::unique_ptr<SpawnRequest> request_;  // the child's plan points into it: it never moves
  LaunchResult result_;
};

// spawn(spec, onExit(exitCode|null, signal|null, waitErrno)) -> Promise<{pid, kill(signo), terminalFd?}>
Napi::Value Spawn(const Napi::CallbackInfo& info) {
  Args args(info, "spawn");
  Napi::Function onExit = args.Get<Napi::Function>(1, "onExit");
  std::unique_ptr<SpawnWorker> worker(new SpawnWorker(info.Env(), info[0], onExit));
  Napi::Promise promise = worker->Promise();
  worker.release()->Queue();  // the worker deletes itself after OnOK
  return promise;
}

// getrlimit(resource) -> [soft, hard], Infinity for RLIM_INFINITY (TS clamps requested limits to these).
Napi::Value GetRlimit(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  int resource = Args(info, "getrlimit").Get<int32_t>(0, "resource");
  struct rlimit rl;
  if (getrlimit((__rlimit_resource_t)resource, &rl) != 0) ThrowSystemError(env, errno, "getrlimit");
  auto num = [&](rlim_t v) { return Napi::Number::New(env, v == RLIM_INFINITY ? INFINITY : (double)v); };
  Napi::Array out = Napi::Array::New(env, 2);
  out.Set(0u, num(rl.rlim_cur));
  out.Set(1u, num(rl.rlim_max));
  return out;
}

// setCloexec(fd, on): fds handed to children must not be CLOEXEC only if passed by number (e.g. to
// a host helper); spawn itself dup2s stdio, so this is for callers and tests.
Napi::Value SetCloexec(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  Args args(info, "setCloexec");
  int fd = args.Get<int32_t>(0, "fd");
  bool on = args.Get<bool>(1, "on");
  int flags = fcntl(fd, F_GETFD);
  if (flags < 0) ThrowSystemError(env, errno, "fcntl");
  flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
  if (fcntl(fd, F_SETFD, flags) != 0) ThrowSystemError(env, errno, "fcntl");
  return env.Undefined();
}

}  // namespace

void InitSpawn(Napi::Env env, Napi::Object exports) {
  Register(env, exports, {{"spawn", Spawn}, {"getrlimit", GetRlimit}, {"setCloexec", SetCloexec}});
}

}  // namespace tsb
