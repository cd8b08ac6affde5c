// The parent side of spawn, one file per concern:
//   spawn_request.cc  the spec read from JS into owned buffers, and the ChildPlan's pointer views of them
//   spawn_launch.cc   on a pool thread: the fds the child needs, clone3, the child's error record
//   spawn_failure.cc  a child's ChildError (or a parent-side Failure) as a JS Error
//   spawn_init.cc     the sealed memfd copy of the init binary
//   spawn_process.cc  the process handle: pidfd watched in the event loop, kill()
//   spawn.cc          the AsyncWorker tying them together, and the exports
// The child's side is spawn_child.cc and spawn_clone.cc (raw syscalls only, from the buffers here).
#pragma once
#include <napi.h>

#include <string>
#include <utility>
#include <vector>

#include "errors.h"
#include "spawn_plan.h"

namespace tsb {

struct OwnedStep {
  std::string path, source, fstype, data;
  bool hasSource = false, hasFstype = false, hasData = false;
  ChildStep step{};
};

// A spawn spec copied out of JS: owned strings and arrays, plus the ChildPlan pointing into them.
// It is neither copied nor moved once BuildPlan ran (the plan holds pointers into it).
struct SpawnRequest {
  SpawnRequest() = default;
  SpawnRequest(const SpawnRequest&) = delete;
  SpawnRequest& operator=(const SpawnRequest&) = delete;

  // spec (owned copies)
  std::vector<std::string> argv, envp, candidates, cgroupProcs;
  std::vector<OwnedStep> steps;
  std::vector<std::pair<int, std::string>> joins;  // CLONE_NEW* type, path
  std::vector<ChildRlimit> rlimits;
  std::vector<std::string> rlimitNames;
  std::vector<uint32_t> groups;
  std::vector<uint8_t> seccomp;  // struct sock_filter[], 8 bytes each
  std::string cwd, cgroupDir, initPath, initName = "tsbuild-init";
  bool hasCwd = false, hasCgroupDir = false, useInit = false, vfork = true, initExecOnly = false, wantConsole = false;
  uint64_t cloneFlags = 0;
  ChildPlan plan{};

  // pointer views for the child
  std::vector<char*> argvPtrs, envpPtrs, initArgvPtrs;
  std::vector<const char*> candPtrs;
  std::vector<ChildStep> childSteps;
  std::string initFlag = "-x", execOnlyFlag = "-e", endOfOptions = "--";
};

// Reads the normalized spec (src/spawn.ts NativeSpawnSpec) into `req` and builds its plan. A missing or
// mistyped key is a TypeError naming it.
void ParseSpawnRequest(Napi::Env env, const Napi::Value& spec, SpawnRequest& req);

// What happened on the pool thread.
struct LaunchResult {
  Failure parent;  // a parent-side syscall failed (nothing runs)
  bool childFailed = false;
  ChildError child{};
  int pid = -1, pidfd = -1, terminalFd = -1;
};
// Runs on a libuv pool thread: open what the child needs, clone, learn whether execve happened.
LaunchResult Launch(SpawnRequest& req);

// The memfd holding a sealed copy of the init binary (one per binary per process), or a Failure.
int InitMemfd(const std::string& path, Failure* failure);

// The Error for a child that failed before execve: code, errno, syscall, path, step, exitCode.
Napi::Error ChildFailure(Napi::Env env, const SpawnRequest& req, const ChildError& e);
const char* StepName(int op);  // -1 when unknown
int StepOpFromName(const std::string& name);

// Watches pidfd in the event loop and calls onExit(exitCode|null, signal|null, waitErrno) once the
// process is reaped; returns the handle {pid, kill(signo), terminalFd?}. On a failure to watch, the
// process is killed and reaped and a SystemError is thrown.
Napi::Object WatchProcess(Napi::Env env, int pid, int pidfd, int terminalFd, Napi::FunctionReference onExit);

}  // namespace tsb
