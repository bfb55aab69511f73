// The configuration loader on arbitrary text: it must never crash or throw,
// and every diagnostic must point at a line (only "cannot open the file",
// which load_string never reports, has line 0) and say something.
#include <cstddef>
#include <cstdint>
#include <exception>
#include <string>

#include "core/config/config.h"
#include "fuzz_check.h"

namespace {

using ferry::fuzz::check;

// position_of places plugin-reported errors; exercise it on what loaded.
void touch_block(const ferry::config::PluginBlock& block) {
  (void)ferry::config::position_of(block, "");
  if (!block.options.is_object()) return;
  for (const auto& [key, value] : block.options.items()) {
    (void)ferry::config::position_of(block, "/" + key);
    (void)value;
  }
  (void)ferry::config::position_of(block, "/no/such/key");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text = ferry::fuzz::bytes(data, size);
  ferry::config::LoadResult loaded;
  try {
    loaded = ferry::config::load_string(text, "fuzz.toml");
  } catch (const std::exception& e) {
    ferry::fuzz::fail("config::load_string threw", e.what());
  } catch (...) {
    ferry::fuzz::fail("config::load_string threw something that is not a std::exception");
  }
  check(!loaded.config == !loaded.errors.empty(), "a config came back together with errors (or neither)");
  for (const auto& d : loaded.errors) {
    if (d.pos.line < 1) ferry::fuzz::fail("a diagnostic without a line", d.str());
    if (d.message.empty()) ferry::fuzz::fail("a diagnostic without a message", d.str());
  }
  if (loaded.config) {
    for (const auto& p : loaded.config->providers) touch_block(p.block);
    for (const auto& m : loaded.config->middleware) touch_block(m);
    for (const auto& p : loaded.config->pipelines) touch_block(p.router);
  }
  return 0;
}
