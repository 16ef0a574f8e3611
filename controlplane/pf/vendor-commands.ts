/**
 * offpath's vendor-specific admin commands (PF only), as the emulator
 * implements them (emulator/native/commands.h, docs/emulator.md).
 */
export const VendorOpcode = {
  /** NSID = the namespace; CDW10..11 = new size in blocks. */
  RESIZE_NAMESPACE: 0xc0,
  /** CDW10 15:0 = CNTLID; CDW11 = IOPS; CDW12 = KiB/s (0 = unlimited). */
  SET_CONTROLLER_LIMITS: 0xc1,
  /** CDW10 15:0 = CNTLID; completion DW0 = IOPS, DW1 = KiB/s. */
  GET_CONTROLLER_LIMITS: 0xc2,
  /** CDW10 15:0 = CNTLID; CDW11 bit 0 = read-only (writes fail NS_WRITE_PROTECTED). */
  SET_CONTROLLER_ACCESS: 0xc3,
} as const;
