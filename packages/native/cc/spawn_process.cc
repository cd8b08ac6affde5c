// The handle of a started process: its pidfd is watched in the event loop (uv_poll), and once it is
// readable the process is reaped with waitid(P_PIDFD) and onExit(exitCode|null, signal|null, waitErrno)
// runs. kill() signals through the pidfd, so a recycled pid is never hit.
#include <signal.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>
#include <uv.h>

#include <cerrno>
#include <memory>

#include "args.h"
#include "spawn_parent.h"

#ifndef P_PIDFD
#define P_PIDFD 3
#endif

namespace tsb {
namespace {

struct ProcState {
  int pid = -1;
  int pidfd = -1;
  bool reaped = false;
};

struct Watcher {
  uv_poll_t poll;
  napi_env env;
  std::shared_ptr<ProcState> state;
  Napi::FunctionReference onExit;
  std::unique_ptr<Napi::AsyncContext> context;
  bool closing = false;
};

void OnWatcherClosed(uv_handle_t* h) {
  Watcher* w = static_cast<Watcher*>(h->data);
  if (w->state->pidfd >= 0) close(w->state->pidfd);
  w->state->pidfd = -1;
  delete w;
}

void CloseWatcher(Watcher* w) {
  if (w->closing) return;
  w->closing = true;
  uv_poll_stop(&w->poll);
  uv_close(reinterpret_cast<uv_handle_t*>(&w->poll), OnWatcherClosed);
}

// The env is going away (worker thread exit) while the process still runs: stop watching it.
void OnEnvCleanup(void* arg) { CloseWatcher(static_cast<Watcher*>(arg)); }

void OnPidfdReadable(uv_poll_t* h, int status, int events) {
  Watcher* w = static_cast<Watcher*>(h->data);
  if (w->closing) return;
  siginfo_t si;
  memset(&si, 0, sizeof si);
  int r = waitid(static_cast<idtype_t>(P_PIDFD), (id_t)w->state->pidfd, &si, WEXITED | WNOHANG);
  if (r == 0 && si.si_pid == 0) return;  // not yet
  if (r != 0 && errno == EINTR) return;
  int waitErr = r == 0 ? 0 : errno;
  w->state->reaped = true;
  napi_remove_env_cleanup_hook(w->env, OnEnvCleanup, w);
  Napi::Env env(w->env);
  Napi::HandleScope scope(env);
  Napi::Value code = env.Null(), sig = env.Null();
  if (waitErr == 0 && si.si_code == CLD_EXITED) code = Napi::Number::New(env, si.si_status);
  if (waitErr == 0 && si.si_code != CLD_EXITED) sig = Napi::Number::New(env, si.si_status);
  Napi::FunctionReference cb = std::move(w->onExit);
  std::unique_ptr<Napi::AsyncContext> context = std::move(w->context);
  CloseWatcher(w);
  try {
    cb.MakeCallback(env.Global(), {code, sig, Napi::Number::New(env, waitErr)}, *context);
  } catch (const Napi::Error& e) {
    napi_fatal_exception(env, e.Value());
  }
}

Napi::Object MakeProcessObject(Napi::Env env, std::shared_ptr<ProcState> state) {
  Napi::Object obj = Napi::Object::New(env);
  obj.Set("pid", state->pid);
  obj.Set("kill", Napi::Function::New(
                      env,
                      [state](const Napi::CallbackInfo& info) -> Napi::Value {
                        Napi::Env env = info.Env();
                        int sig = Args(info, "kill").Get<int32_t>(0, "signo");
                        if (state->reaped || state->pidfd < 0) return Napi::Boolean::New(env, false);
                        if (syscall(SYS_pidfd_send_signal, state->pidfd, sig, nullptr, 0) != 0) {
                          if (errno == ESRCH) return Napi::Boolean::New(env, false);
                          ThrowSystemError(env, errno, "pidfd_send_signal");
                        }
                        return Napi::Boolean::New(env, true);
                      },
                      "kill"));
  return obj;
}

}  // namespace

Napi::Object WatchProcess(Napi::Env env, int pid, int pidfd, int terminalFd, Napi::FunctionReference onExit) {
  auto state = std::make_shared<ProcState>();
  state->pid = pid;
  state->pidfd = pidfd;
  uv_loop_t* loop = nullptr;
  napi_get_uv_event_loop(env, &loop);
  Watcher* w = new Watcher();
  w->env = env;
  w->state = state;
  w->onExit = std::move(onExit);
  w->context = std::make_unique<Napi::AsyncContext>(env, "tsbuild:process");
  w->poll.data = w;
  int r = uv_poll_init(loop, &w->poll, pidfd);
  bool initialized = r == 0;
  if (r == 0) r = uv_poll_start(&w->poll, UV_READABLE, OnPidfdReadable);
  if (r != 0) {
    // Cannot watch it: do not leave it running unobserved.
    syscall(SYS_pidfd_send_signal, pidfd, SIGKILL, nullptr, 0);
    siginfo_t si;
    waitid(static_cast<idtype_t>(P_PIDFD), (id_t)pidfd, &si, WEXITED);
    state->reaped = true;
    if (initialized) {
      CloseWatcher(w);  // closes the pidfd
    } else {
      close(pidfd);
      state->pidfd = -1;
      delete w;
    }
    if (terminalFd >= 0) close(terminalFd);
    ThrowSystemError(env, -r, "uv_poll_start");
  }
  napi_add_env_cleanup_hook(env, OnEnvCleanup, w);
  Napi::Object proc = MakeProcessObject(env, state);
  if (terminalFd >= 0) proc.Set("terminalFd", terminalFd);
  return proc;
}

}  // namespace tsb
