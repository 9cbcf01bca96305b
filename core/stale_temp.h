// Temporary files of atomic writes (`<path>.tmp.<pid>`, core/safetensors.h) that a killed
// process left behind. A writer removes those of its own target before writing, but only
// where the pid no longer names a live process: another process may be writing the same
// path right now.
#pragma once
#include <string>
#include <vector>

namespace shrink {

// True when no process has id `pid` (kill(pid, 0) fails with ESRCH). A process we may not
// signal (EPERM) is alive.
bool process_is_gone(long pid);

// Removes every `<path>.tmp.<pid>` (file or folder) beside `path` whose pid is gone;
// returns the removed paths. Errors (a folder we cannot list, say) are ignored: the
// cleanup is best effort and must never fail the write it precedes.
std::vector<std::string> remove_stale_temps(const std::string& path);

// The same for every `<name>.tmp.<pid>` directly inside `folder`, whatever the name.
std::vector<std::string> remove_stale_temps_in(const std::string& folder);

}  // namespace shrink
