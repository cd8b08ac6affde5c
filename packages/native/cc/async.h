// Blocking syscalls (mount, umount2, fsmount, flock) run on a libuv pool thread so that the event loop
// never waits on the kernel (a slow disk, a FUSE daemon, a held lock). Each such call is written once
// as a function returning a Failure; Queue runs it off the JS thread, RunNow on it (the *Sync exports).
#pragma once
#include <napi.h>
#include <functional>
#include <utility>

#include "errors.h"

namespace tsb {

class SyscallWorker : public Napi::AsyncWorker {
 public:
  // Returns a promise that resolves to undefined once `work` succeeded, or rejects with its SystemError.
  static Napi::Promise Queue(Napi::Env env, const char* name, std::function<Failure()> work) {
    auto* worker = new SyscallWorker(env, name, std::move(work));
    Napi::Promise promise = worker->deferred_.Promise();
    worker->Napi::AsyncWorker::Queue();  // the worker deletes itself after OnOK
    return promise;
  }
  static Napi::Value RunNow(Napi::Env env, const std::function<Failure()>& work) {
    Failure f = work();
    if (f) throw SystemError(env, f);
    return env.Undefined();
  }

 protected:
  void Execute() override { failure_ = work_(); }
  void OnOK() override {
    if (failure_)
      deferred_.Reject(SystemError(Env(), failure_).Value());
    else
      deferred_.Resolve(Env().Undefined());
  }

 private:
  SyscallWorker(Napi::Env env, const char* name, std::function<Failure()> work)
      : Napi::AsyncWorker(env, name), deferred_(Napi::Promise::Deferred::New(env)), work_(std::move(work)) {}

  Napi::Promise::Deferred deferred_;
  std::function<Failure()> work_;
  Failure failure_;
};

// Queues a worker that settles its own deferred and deletes itself after OnOK; returns its promise.
template <typename Worker, typename... Args>
Napi::Promise QueueWorker(Napi::Env env, Args&&... args) {
  auto* worker = new Worker(env, std::forward<Args>(args)...);
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace tsb
