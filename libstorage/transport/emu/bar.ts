/**
 * The software VSIC's BAR0 beyond the NVMe registers: the emulator page.
 * Declared for C++ in emulator/native/bar_layout.h (same numbers; the spec
 * test compares them).
 */
export const EMU_BAR_BYTES = 16384;
export const EMU_PAGE_OFFSET = 0x3000;
/** u32, 1 while the poller serving this controller sleeps: ring the wake eventfd. */
export const EMU_POLLER_SLEEPING_OFFSET = EMU_PAGE_OFFSET + 0;
/** u32, how often the poller was woken (diagnostics). */
export const EMU_WAKEUPS_OFFSET = EMU_PAGE_OFFSET + 4;
/** Highest queue id (0 = admin) the emulator provides doorbells for. */
export const EMU_MAX_QUEUE_ID = 64;
/** The control protocol spoken on PF and VF sockets (docs/emulator.md). */
export const EMU_PROTOCOL_VERSION = 1;
