// A child that failed before execve wrote a ChildError (phase, index, errno, syscall) to the error pipe;
// this turns it into the Error JS sees: a sentence naming what failed, with code, errno, syscall, path,
// step/stepName for setup steps, and the exit code a shell would report (125 setup, 126, 127).
#include <sched.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "spawn_parent.h"

namespace tsb {
namespace {

const char* const kSyscallNames[] = {
    "",         "prctl",      "getppid",   "dup",         "write",        "setns",      "close_range",
    "mount",    "mkdir",      "mknod",     "symlink",     "open",         "pivot_root", "umount2",
    "chdir",    "fchdir",     "chroot",    "stat",        "statfs",       "sethostname", "open_tree",
    "move_mount", "mount_setattr", "prlimit", "setsid",   "ioctl(TIOCSCTTY)", "capset", "setgroups",
    "setresgid", "setresuid", "getcwd",    "execve",      "execveat",     "mount",      "getcwd",
    "sendmsg",  "socket",     "seccomp"};
static_assert(sizeof kSyscallNames / sizeof kSyscallNames[0] == kSysCount, "one name per ChildSyscall");

std::string Quote(const std::string& s) { return "\"" + s + "\""; }

}  // namespace

Napi::Error ChildFailure(Napi::Env env, const SpawnRequest& req, const ChildError& e) {
  int sc = e.syscall >= 0 && e.syscall < kSysCount ? e.syscall : 0;
  std::string syscall = kSyscallNames[sc];
  std::string what, path, stepName;
  int exitCode = 125;
  switch (e.phase) {
    case kPhaseExec: {
      path = e.index >= 0 && e.index < (int)req.candidates.size() ? req.candidates[e.index]
                                                                   : (req.argv.empty() ? "" : req.argv[0]);
      what = syscall + " " + Quote(path);
      if (e.index < 0) what += " (not found in the container's PATH)";
      exitCode = (e.err == ENOENT || e.err == ENOTDIR) ? 127 : 126;
      break;
    }
    case kPhaseStep: {
      if (e.index < 0 || e.index >= (int)req.steps.size()) {
        what = "setup step " + std::to_string(e.index) + ": " + syscall;
        break;
      }
      const OwnedStep& s = req.steps[e.index];
      stepName = StepName(s.step.op);
      path = s.path;
      what = "setup step " + std::to_string(e.index) + " (" + stepName;
      if (s.step.op == kStepMount || s.step.op == kStepBindRemount) {
        if (s.hasFstype) what += " " + s.fstype;
        if (s.hasSource) what += " " + Quote(s.source);
        what += " on";
      } else if (s.step.op == kStepOpenTree) {
        path = s.source;
      }
      what += " " + Quote(path) + "): " + syscall;
      if (sc == kSysNotDevNull) what += " (/dev/null is not the null device 1:3)";
      break;
    }
    case kPhaseSetns: {
      // e.index counts the joins passed to the child (the pid namespace is joined by the parent).
      int k = 0;
      for (auto& j : req.joins) {
        if (j.first == CLONE_NEWPID) continue;
        if (k++ == e.index) path = j.second;
      }
      what = "setns " + Quote(path);
      break;
    }
    case kPhaseCgroup:
      path = e.index >= 0 && e.index < (int)req.cgroupProcs.size() ? req.cgroupProcs[e.index] : "";
      what = "joining cgroup " + Quote(path);
      break;
    case kPhaseRlimit:
      what = "setting rlimit " +
             (e.index >= 0 && e.index < (int)req.rlimitNames.size() ? req.rlimitNames[e.index] : std::string("?"));
      break;
    case kPhaseCwd:
      path = req.hasCwd ? req.cwd : "";
      what = sc == kSysCwdOutside ? "the working directory " + Quote(path) + " is outside the container root"
                                  : syscall + " to the working directory " + Quote(path);
      break;
    case kPhaseStdio:
      what = "setting up stdio fd " + std::to_string(e.index);
      break;
    case kPhaseIds:
      what = "switching to uid " + std::to_string(req.plan.uid) + " gid " + std::to_string(req.plan.gid) + ": " + syscall;
      break;
    case kPhaseCaps:
      what = "setting capabilities: " + syscall;
      break;
    case kPhaseTerminal:
      what = "making stdin the controlling terminal: " + syscall;
      break;
    case kPhaseNoNewPrivs:
      what = "setting no_new_privs";
      break;
    case kPhaseDeathSignal:
      what = "setting the parent-death signal";
      break;
    case kPhaseSeccomp:
      what = "installing the seccomp filter";
      break;
    default:
      what = "setting up the child: " + syscall;
  }
  std::string msg = what + ": " + ErrnoName(e.err) + " (" + strerror(e.err) + ")";
  Napi::Error err = SystemErrorWithMessage(env, msg, e.err, syscall, path);
  if (e.phase == kPhaseStep) {
    err.Set("step", Napi::Number::New(env, e.index));
    err.Set("stepName", Napi::String::New(env, stepName));
  }
  err.Set("exitCode", Napi::Number::New(env, exitCode));
  return err;
}

}  // namespace tsb
