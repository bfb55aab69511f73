#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <ferry/ferry.h>

// The host side of a plugin's identity (ferry_plugin_handle in the ABI): the
// library's, from negotiation, or (ABI 1.3) one configured instance's.
struct ferry_plugin_handle {
  std::string name;  // the plugin's
  std::string path;
  ferry_plugin_kind kind = 0;
  // An instance's block name when it differs from the plugin's ("limits" for
  // [middleware.limits] plugin = "rate-limit"); empty for the library's handle.
  std::string instance;
  // How log lines name it: "rate-limit" or "rate-limit[limits]".
  std::string log_name;
  // Its state keys' prefix: "rate-limit:" or "rate-limit.limits:".
  std::string state_prefix;
};

namespace ferry::plugin {
// A handle for the instance `block` of the plugin `plugin`.
std::unique_ptr<ferry_plugin_handle> instance_handle(const std::string& plugin, const std::string& block,
                                                     ferry_plugin_kind kind);
}  // namespace ferry::plugin

namespace ferry::plugin {

const char* kind_name(ferry_plugin_kind kind);

// Empty if a plugin built against plugin_major.plugin_minor may run in a host
// at host_major.host_minor; otherwise the reason (sdk/ABI.md R2, R3).
std::string check_abi(uint32_t host_major, uint32_t host_minor, uint32_t plugin_major, uint32_t plugin_minor);

// A loaded and negotiated plugin library. Stays loaded while any instance
// created from it is alive (instances hold a shared_ptr).
class PluginLibrary {
 public:
  ~PluginLibrary();
  // Loads the file, calls its entry symbol and validates what it returned.
  // On failure returns null and one line naming the file and what is wrong.
  static std::shared_ptr<PluginLibrary> load(const std::string& path, std::string* error);

  const std::string& path() const { return handle_.path; }
  const std::string& name() const { return handle_.name; }
  ferry_plugin_kind kind() const { return handle_.kind; }
  const char* version() const { return info_->version; }
  uint32_t abi_major() const { return abi_major_; }
  uint32_t abi_minor() const { return abi_minor_; }
  const ferry_plugin_info& info() const { return *info_; }
  ferry_plugin_handle* handle() { return &handle_; }

 private:
  struct Impl;
  PluginLibrary();
  std::unique_ptr<Impl> impl_;
  ferry_plugin_handle handle_;
  const ferry_plugin_info* info_ = nullptr;
  uint32_t abi_major_ = 0;
  uint32_t abi_minor_ = 0;
};

// Finds plugins by kind and name: a file ferry_<kind>_<name>.so in the search
// directories, in order, or an explicit path (anything containing '/').
class Registry {
 public:
  explicit Registry(std::vector<std::string> dirs) : dirs_(std::move(dirs)) {}
  std::shared_ptr<PluginLibrary> find(ferry_plugin_kind kind, const std::string& name, std::string* error);
  const std::vector<std::string>& dirs() const { return dirs_; }
  // Built-in plugin directories: $FERRY_PLUGIN_PATH, next to the executable, and the build tree.
  static std::vector<std::string> default_dirs();

 private:
  std::vector<std::string> dirs_;
  std::vector<std::shared_ptr<PluginLibrary>> loaded_;
};

// The file name a plugin of this kind and name has: ferry_provider_openai.so.
std::string file_name(ferry_plugin_kind kind, std::string_view name);

}  // namespace ferry::plugin
