// ferry: the command-line companion of ferryd.
//   ferry check FILE          validate a configuration without serving
//   ferry plugins [DIR...]    list the plugins ferryd can find
//   ferry keys ...            manage the auth plugin's API keys (admin API)
//   ferry version
#include <algorithm>
#include <filesystem>
#include <iostream>
#include <string>
#include <vector>

#include <ferry/version.h>

#include "core/config/config.h"
#include "core/pipeline/runtime.h"
#include "core/plugin/plugin_library.h"
#include "host/cli/audit.h"
#include "host/cli/keys.h"

namespace {

constexpr const char* kUsage =
    "usage: ferry check FILE        validate a configuration (exit 0 if good, 2 with file:line:col errors)\n"
    "       ferry plugins [DIR...]  list the plugins found in DIRs and the built-in directories\n"
    "       ferry keys list|create|rotate|revoke|hash ...  manage API keys of the auth plugin (ferry keys "
    "for help)\n"
    "       ferry audit decrypt FILE [--key-env VAR]...  the audit log with its sealed bodies opened\n"
    "       ferry version\n";

int check(const std::string& path) {
  auto loaded = ferry::config::load_file(path);
  if (!loaded.config) {
    for (const auto& e : loaded.errors) std::cerr << e.str() << "\n";
    return 2;
  }
  std::shared_ptr<const ferry::config::Config> cfg = std::move(loaded.config);
  // Building the runtime loads every plugin and lets each validate its options.
  std::vector<ferry::config::Diagnostic> errors;
  auto runtime = ferry::pipeline::Runtime::build(cfg, errors);
  if (!runtime) {
    for (const auto& e : errors) std::cerr << e.str() << "\n";
    return 2;
  }
  size_t models = 0;
  for (const auto& p : runtime->pipelines()) models += p->models.size();
  std::cout << path << ": OK (" << runtime->pipelines().size() << " pipelines, "
            << runtime->providers().size() << " providers, " << models << " models)\n";
  return 0;
}

int plugins(std::vector<std::string> dirs) {
  for (auto& d : ferry::plugin::Registry::default_dirs()) dirs.push_back(d);
  namespace fs = std::filesystem;
  std::vector<std::string> seen;
  int problems = 0;
  for (const auto& d : dirs) {
    std::error_code ec;
    if (!fs::is_directory(d, ec)) continue;
    std::vector<fs::path> files;
    for (const auto& e : fs::directory_iterator(d, ec))
      if (e.path().extension() == ".so" && e.path().filename().string().starts_with("ferry_"))
        files.push_back(e.path());
    std::sort(files.begin(), files.end());
    for (const auto& f : files) {
      auto name = f.filename().string();
      if (std::find(seen.begin(), seen.end(), name) != seen.end())
        continue;  // shadowed by an earlier directory
      seen.push_back(name);
      std::string why;
      auto lib = ferry::plugin::PluginLibrary::load(f.string(), &why);
      if (!lib) {
        std::cout << "!! " << why << "\n";
        ++problems;
        continue;
      }
      std::cout << ferry::plugin::kind_name(lib->kind()) << "\t" << lib->name() << "\t" << lib->version()
                << "\tABI " << lib->abi_major() << "." << lib->abi_minor() << "\t" << f.string() << "\n";
    }
  }
  return problems ? 2 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    std::cout << kUsage;
    return args.empty() ? 2 : 0;
  }
  if (args[0] == "check") {
    if (args.size() != 2) {
      std::cerr << kUsage;
      return 2;
    }
    return check(args[1]);
  }
  if (args[0] == "plugins") return plugins({args.begin() + 1, args.end()});
  if (args[0] == "keys") return ferry::cli::keys({args.begin() + 1, args.end()});
  if (args[0] == "audit") return ferry::cli::audit({args.begin() + 1, args.end()});
  if (args[0] == "version") {
    std::cout << "ferry " << FERRY_SDK_VERSION_STRING << " (plugin ABI " << FERRY_ABI_MAJOR << "."
              << FERRY_ABI_MINOR << ")\n";
    return 0;
  }
  std::cerr << "ferry: unknown command '" << args[0] << "'\n" << kUsage;
  return 2;
}
