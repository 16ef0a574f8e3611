// The offpath native addon: what JavaScript cannot do for a user-space NVMe
// driver (shared memory, eventfds, fd passing, ordered MMIO, VFIO).
#include "registry.h"

namespace offpath {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  RegisterErrors(env, exports);
  RegisterMapping(env, exports);
  RegisterDmaMemory(env, exports);
  RegisterFdWatch(env, exports);
  RegisterEventfd(env, exports);
  RegisterSeqpacket(env, exports);
  RegisterDoorbell(env, exports);
  RegisterVfio(env, exports);
  RegisterNvmeAdmin(env, exports);
  RegisterSpecLayout(env, exports);
  RegisterEmuStore(env, exports);
  RegisterEmuController(env, exports);
  RegisterBenchClient(env, exports);
  return exports;
}

}  // namespace offpath

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return offpath::Init(env, exports);
}

NODE_API_MODULE(offpath_addon, InitAddon)
