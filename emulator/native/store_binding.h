// Native access to the Store behind a JS EmuStore object, for the emulator's
// controller: a tool opens the store from JS and hands the object over.
#pragma once

#include <napi.h>

#include <memory>

#include "store.h"

namespace offpath::emu {

// The store behind an open EmuStore, shared: it stays open while anyone
// holds it, even after the JS object's close(). nullptr when value is not an
// EmuStore or that EmuStore is closed.
std::shared_ptr<Store> StoreFromValue(Napi::Value value);

}  // namespace offpath::emu
