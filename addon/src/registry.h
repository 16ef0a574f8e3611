// Each source file of the addon adds its functions to the module's exports
// through one of these; addon.cc calls them in order at load time.
#pragma once
#include <napi.h>

namespace offpath {
void RegisterErrors(Napi::Env env, Napi::Object exports);
void RegisterMapping(Napi::Env env, Napi::Object exports);
void RegisterDmaMemory(Napi::Env env, Napi::Object exports);
void RegisterFdWatch(Napi::Env env, Napi::Object exports);
void RegisterEventfd(Napi::Env env, Napi::Object exports);
void RegisterSeqpacket(Napi::Env env, Napi::Object exports);
void RegisterDoorbell(Napi::Env env, Napi::Object exports);
void RegisterVfio(Napi::Env env, Napi::Object exports);
void RegisterNvmeAdmin(Napi::Env env, Napi::Object exports);
void RegisterSpecLayout(Napi::Env env, Napi::Object exports);
void RegisterEmuStore(Napi::Env env, Napi::Object exports);
void RegisterEmuController(Napi::Env env, Napi::Object exports);
void RegisterBenchClient(Napi::Env env, Napi::Object exports);
}  // namespace offpath
