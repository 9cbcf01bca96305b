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
inline ToolResult run_tool(const std::string& args) {
  const std::string command = std::string(SHRINK_BIN_DIR) + "/" + args + " 2>&1";
  FILE* pipe = popen(command.c_str(), "r");
  std::string output;
  char buffer[4096];
  while (size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) output.append(buffer, n);
  const int status = pclose(pipe);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, output};
}

}  // namespace shrink::testing
