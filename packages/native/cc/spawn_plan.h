// Everything the spawned child needs, prepared by the parent before clone. The child only reads it
// (it may fill the one argv slot reserved for the resolved path when an init is used).
#pragma once
#include <stddef.h>
#include <stdint.h>

namespace tsb {

enum StepOp : int32_t {
  kStepMount,
  kStepBindRemount,
  kStepMkdir,
  kStepMknod,
  kStepSymlink,
  kStepWriteFile,
  kStepPivotRoot,
  kStepChroot,
  kStepMaskPath,
  kStepReadonlyPath,
  kStepSethostname,
  kStepChdir,
  kStepUmask,
  kStepOpenTree,
  kStepAttachTree,
  kStepConsolePty,
  kStepLoopbackUp,
};

struct ChildStep {
  int32_t op;
  int32_t optional;  // ENOENT is not an error
  const char* path;  // target / path / root / name
  const char* source;  // mount source, symlink target, writeFile data, openTree source
  const char* fstype;
  const char* data;  // mount data
  size_t dataLen;  // writeFile length
  unsigned long flags;  // mount flags (MS_*)
  uint32_t mode;
  uint32_t parents;  // mkdir -p
  uint64_t dev;  // mknod
  int32_t slot;  // openTree / attachTree
  uint32_t recursive;
  uint32_t ifMissing;  // writeFile: create only when absent (a mount point), never truncate
};

struct ChildRlimit {
  int resource;
  uint64_t soft, hard;
};

// Where the child failed; the parent turns it into an Error.
enum ChildPhase : int32_t {
  kPhaseDeathSignal,
  kPhaseStdio,
  kPhaseCgroup,
  kPhaseSetns,
  kPhaseCloseFds,
  kPhaseStep,
  kPhaseRlimit,
  kPhaseTerminal,
  kPhaseNoNewPrivs,
  kPhaseCaps,
  kPhaseIds,
  kPhaseCwd,
  kPhaseExec,
  kPhaseSeccomp,
};

// Which syscall failed inside a phase (an index into kChildSyscallNames).
enum ChildSyscall : int32_t {
  kSysNone,
  kSysPrctl,
  kSysGetppid,
  kSysDup,
  kSysWrite,
  kSysSetns,
  kSysCloseRange,
  kSysMount,
  kSysMkdir,
  kSysMknod,
  kSysSymlink,
  kSysOpen,
  kSysPivotRoot,
  kSysUmount,
  kSysChdir,
  kSysFchdir,
  kSysChroot,
  kSysStat,
  kSysStatfs,
  kSysSethostname,
  kSysOpenTree,
  kSysMoveMount,
  kSysMountSetattr,
  kSysPrlimit,
  kSysSetsid,
  kSysIoctl,
  kSysCapset,
  kSysSetgroups,
  kSysSetresgid,
  kSysSetresuid,
  kSysGetcwd,
  kSysExecve,
  kSysExecveat,
  kSysNotDevNull,  // the mask source is not char 1:3 (CVE-2025-31133)
  kSysCwdOutside,  // getcwd is not below the container root (CVE-2024-21626)
  kSysSendmsg,
  kSysSocket,
  kSysSeccomp,
  kSysCount
};

struct ChildError {
  int32_t phase;
  int32_t index;  // step index, setns index, rlimit index or exec candidate (-1: none found)
  int32_t err;  // errno
  int32_t syscall;  // ChildSyscall
};

constexpr int kMaxTreeSlots = 64;

struct ChildPlan {
  // exec
  char* const* argv;
  char* const* envp;
  const char* const* candidates;
  int ncandidates;
  int memfd;  // >= 0: execveat this sealed init with initArgv
  char** initArgv;
  int initPathSlot;  // initArgv[initPathSlot] receives the resolved candidate
  // fds
  int stdio[3];
  int errfd;
  int consoleSock;  // >= 0: a consolePty step sends the pty master here (SCM_RIGHTS)
  const int* cgroupProcsFds;
  int ncgroupProcs;
  const int* joinFds;
  const int* joinTypes;
  int njoins;
  // setup
  const ChildStep* steps;
  int nsteps;
  const ChildRlimit* rlimits;
  int nrlimits;
  bool setIds;
  uint32_t uid, gid;
  const uint32_t* groups;
  int ngroups;
  bool hasCaps;
  uint64_t bounding, effective, permitted, inheritable, ambient;
  int lastCap;
  bool noNewPrivs;
  // A classic BPF seccomp filter (struct sock_filter[seccompLen]; 0: none), compiled by the caller.
  // Installed last before execve when noNewPrivs is set; without it, before the capabilities drop
  // (loading a filter then needs CAP_SYS_ADMIN), as runc does.
  const void* seccompFilter;
  unsigned short seccompLen;
  unsigned int seccompFlags;  // SECCOMP_FILTER_FLAG_*
  bool terminal;
  int pdeathsig;
  int expectedPpid;  // > 0: SIGKILL self when the parent died before PDEATHSIG was armed
  bool nonDumpable;  // PR_SET_DUMPABLE 0 (only when the child has its own mm)
  const char* cwd;
};

// The child's entry point: never returns (execve or exit with 125/126/127).
[[noreturn]] void ChildMain(const ChildPlan* plan);
int ChildEntry(void* plan);

}  // namespace tsb
