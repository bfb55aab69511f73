#pragma once

#include <string>
#include <vector>

namespace ferry::cli {

// `ferry audit decrypt FILE [--key-env VAR]...`: prints the audit log with its
// sealed bodies opened. Exit 0, 1 if a body did not open, 2 for bad usage.
int audit(const std::vector<std::string>& args);

}  // namespace ferry::cli
