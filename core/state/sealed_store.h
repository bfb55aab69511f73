#pragma once

#include <memory>

#include "core/crypto/sealer.h"
#include "core/state/store.h"

namespace ferry::state {

// A backend whose SET values are sealed (AES-256-GCM, bound to their key)
// before they reach Redis or SQLite, and opened on the way back: cached
// answers, stored responses and key records are unreadable at rest without
// the key. Counters (ADD, token buckets, windows) hold numbers only and stay
// as they are. A value written before encryption was turned on reads as it
// was; one that does not open (another key, tampered with) reads as absent,
// and is logged.
std::unique_ptr<Store> make_sealed_store(std::unique_ptr<Store> inner, crypto::Sealer sealer);

}  // namespace ferry::state
