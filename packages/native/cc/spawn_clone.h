// The two ways spawn clones: sharing the parent's memory and a dedicated stack (CLONE_VM|CLONE_VFORK:
// cost independent of the parent's RSS), or copy-on-write like fork (needed when the child must own its
// mm, e.g. to become non-dumpable). Both return the child's pid or -errno.
#pragma once
#include <linux/sched.h>

#include "spawn_plan.h"

namespace tsb {
long Clone3OnStack(struct clone_args* args, int (*fn)(void*), void* arg);
long Clone3Fork(struct clone_args* args, const ChildPlan* plan);
}  // namespace tsb
