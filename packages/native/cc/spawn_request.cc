// The spawn spec, copied out of JS into owned buffers before anything runs, and the ChildPlan: pointer
// views into those buffers, which are all the child reads after clone. TypeScript (src/spawn.ts) has
// validated and normalized the spec; here every key is read with its declared presence and type.
#include <sys/resource.h>
#include <sys/sysmacros.h>

#include <cmath>

#include "args.h"
#include "spawn_parent.h"

namespace tsb {
namespace {

const char* const kStepNames[] = {"mount",       "bindRemount", "mkdir",    "mknod",    "symlink",   "writeFile",
                                  "pivotRoot",   "chroot",      "maskPath", "readonlyPath", "sethostname", "chdir",
                                  "umask",       "openTree",    "attachTree", "consolePty", "loopbackUp"};
constexpr int kStepCount = sizeof kStepNames / sizeof kStepNames[0];
static_assert(kStepCount == kStepLoopbackUp + 1, "one name per StepOp");

// Infinity (or any negative) is RLIM_INFINITY.
uint64_t Limit(double v) { return (!std::isfinite(v) || v < 0) ? RLIM_INFINITY : (uint64_t)v; }

void ParseStep(const Fields& s, OwnedStep& o, SpawnRequest& req) {
  std::string op = s.Get<std::string>("op");
  o.step.op = StepOpFromName(op);
  if (o.step.op < 0) throw Napi::TypeError::New(s.Env(), s.Fn() + ": " + s.Name("op") + " '" + op + "' is not a setup step");
  o.step.optional = s.Optional<bool>("optional", false);
  o.path = s.Optional<std::string>("path", "");
  auto source = s.Optional<std::string>("source"), fstype = s.Optional<std::string>("fstype"),
       data = s.Optional<std::string>("data");
  if ((o.hasSource = source.has_value())) o.source = *source;
  if ((o.hasFstype = fstype.has_value())) o.fstype = *fstype;
  if ((o.hasData = data.has_value())) o.data = *data;
  o.step.flags = (unsigned long)s.Optional<int64_t>("flags", 0);
  o.step.mode = s.Optional<uint32_t>("mode", 0);
  o.step.parents = s.Optional<bool>("parents", false);
  o.step.recursive = s.Optional<bool>("recursive", false);
  o.step.ifMissing = s.Optional<bool>("ifMissing", false);
  o.step.slot = s.Optional<int32_t>("slot", -1);
  o.step.dev = makedev(s.Optional<uint32_t>("major", 0), s.Optional<uint32_t>("minor", 0));
  if (o.step.op == kStepConsolePty) req.wantConsole = true;
}

// Pointer views into the owned strings; nothing moves after this.
void BuildPlan(SpawnRequest& r) {
  for (auto& s : r.argv) r.argvPtrs.push_back(&s[0]);
  r.argvPtrs.push_back(nullptr);
  for (auto& s : r.envp) r.envpPtrs.push_back(&s[0]);
  r.envpPtrs.push_back(nullptr);
  for (auto& s : r.candidates) r.candPtrs.push_back(s.c_str());
  // The init runs as: tsbuild-init -x <resolved path> [-e] -- argv...
  r.initArgvPtrs.push_back(&r.initName[0]);
  r.initArgvPtrs.push_back(&r.initFlag[0]);
  r.initArgvPtrs.push_back(nullptr);  // filled by the child
  if (r.initExecOnly) r.initArgvPtrs.push_back(&r.execOnlyFlag[0]);
  r.initArgvPtrs.push_back(&r.endOfOptions[0]);
  for (auto& s : r.argv) r.initArgvPtrs.push_back(&s[0]);
  r.initArgvPtrs.push_back(nullptr);
  for (auto& o : r.steps) {
    ChildStep s = o.step;
    s.path = o.path.c_str();
    s.source = o.hasSource ? o.source.c_str() : nullptr;
    s.fstype = o.hasFstype ? o.fstype.c_str() : nullptr;
    s.data = o.hasData ? o.data.c_str() : nullptr;
    s.dataLen = o.source.size();
    r.childSteps.push_back(s);
  }
  ChildPlan& p = r.plan;
  p.argv = r.argvPtrs.data();
  p.envp = r.envpPtrs.data();
  p.candidates = r.candPtrs.data();
  p.ncandidates = (int)r.candPtrs.size();
  p.memfd = -1;
  p.initArgv = r.initArgvPtrs.data();
  p.initPathSlot = 2;
  p.steps = r.childSteps.data();
  p.nsteps = (int)r.childSteps.size();
  p.rlimits = r.rlimits.data();
  p.nrlimits = (int)r.rlimits.size();
  p.seccompFilter = r.seccomp.empty() ? nullptr : r.seccomp.data();
  p.seccompLen = (unsigned short)(r.seccomp.size() / 8);
  p.groups = r.groups.data();
  p.ngroups = (int)r.groups.size();
  p.cwd = r.hasCwd ? r.cwd.c_str() : nullptr;
  p.errfd = -1;
  p.consoleSock = -1;
}

}  // namespace

const char* StepName(int op) { return op >= 0 && op < kStepCount ? kStepNames[op] : "?"; }

int StepOpFromName(const std::string& name) {
  for (int i = 0; i < kStepCount; i++)
    if (name == kStepNames[i]) return i;
  return -1;
}

void ParseSpawnRequest(Napi::Env env, const Napi::Value& specValue, SpawnRequest& r) {
  // Messages name the keys as the addon sees them: "spawn: cloneFlags must be a number (got undefined)".
  Fields top(env, "spawn", specValue);
  r.argv = top.List<std::string>("argv");
  r.envp = top.List<std::string>("envp");
  r.candidates = top.List<std::string>("candidates");
  r.cloneFlags = (uint64_t)top.Get<int64_t>("cloneFlags");
  r.vfork = top.Get<bool>("vfork");
  auto cgroupDir = top.Nullable<std::string>("cgroupDir"), cwd = top.Nullable<std::string>("cwd"),
       initPath = top.Nullable<std::string>("initPath");
  if ((r.hasCgroupDir = cgroupDir.has_value())) r.cgroupDir = *cgroupDir;
  if ((r.hasCwd = cwd.has_value())) r.cwd = *cwd;
  if ((r.useInit = initPath.has_value())) r.initPath = *initPath;
  r.cgroupProcs = top.List<std::string>("cgroupProcs");
  r.initExecOnly = top.Get<bool>("initExecOnly");

  for (const Fields& j : top.Objects("joins")) r.joins.emplace_back(j.Get<int32_t>("type"), j.Get<std::string>("path"));
  std::vector<Fields> steps = top.Objects("steps");
  r.steps.resize(steps.size());
  for (size_t i = 0; i < steps.size(); i++) ParseStep(steps[i], r.steps[i], r);
  for (const Fields& l : top.Objects("rlimits")) {
    r.rlimits.push_back(ChildRlimit{l.Get<int32_t>("resource"), Limit(l.Get<double>("soft")), Limit(l.Get<double>("hard"))});
    r.rlimitNames.push_back(l.Get<std::string>("name"));
  }

  ChildPlan& p = r.plan;
  p.setIds = top.Get<bool>("setIds");
  p.uid = top.Get<uint32_t>("uid");
  p.gid = top.Get<uint32_t>("gid");
  r.groups = top.List<uint32_t>("groups");
  if (top.Nullable<Napi::Object>("caps")) {
    Fields c = top.Object("caps");
    p.hasCaps = true;
    p.bounding = (uint64_t)c.Get<double>("bounding");
    p.effective = (uint64_t)c.Get<double>("effective");
    p.permitted = (uint64_t)c.Get<double>("permitted");
    p.inheritable = (uint64_t)c.Get<double>("inheritable");
    p.ambient = (uint64_t)c.Get<double>("ambient");
  }
  p.lastCap = top.Get<int32_t>("lastCap");
  p.noNewPrivs = top.Get<bool>("noNewPrivs");
  if (auto filter = top.Optional<Napi::Buffer<uint8_t>>("seccomp")) {
    r.seccomp.assign(filter->Data(), filter->Data() + filter->Length());
    p.seccompFlags = top.Get<uint32_t>("seccompFlags");
  }
  p.terminal = top.Get<bool>("terminal");
  p.pdeathsig = top.Get<int32_t>("pdeathsig");
  std::vector<int32_t> stdio = top.List<int32_t>("stdio");
  if (stdio.size() != 3) throw Napi::TypeError::New(env, "spawn: stdio must be three fds [stdin, stdout, stderr]");
  for (size_t i = 0; i < 3; i++) p.stdio[i] = stdio[i];
  BuildPlan(r);
}

}  // namespace tsb
