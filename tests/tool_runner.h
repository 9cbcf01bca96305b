// Runs one of the built binaries as a user would, for the tests that check the tools end to
// end: the command line after the binary's name in, exit status and all output back.
#pragma once
#include <sys/wait.h>

#include <cstdio>
#include <string>

namespace shrink::testing {

struct ToolResult {
  int exit_code;       // -1 when killed by a signal
  std::string output;  // stdout and stderr together
};

// `args` starts with the binary's name, e.g. "shrink-train --epochs 0 --out m.safetensors".
// A positive `kill_after_s` guards against hangs (coreutils timeout sends SIGKILL, which
// reads as a signal: exit_code -1); it is a safety net for fault tests, not a speed check.
inline ToolResult run_tool(const std::string& args, int kill_after_s = 0) {
  const std::string guard = kill_after_s > 0 ? "timeout -s KILL " + std::to_string(kill_after_s) + " " : "";
  const std::string command = guard + std::string(SHRINK_BIN_DIR) + "/" + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace shrink::testing
