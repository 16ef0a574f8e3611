/**
 * A device the control plane owns, reached through its physical function.
 * One control-plane logic, several PF drivers: the emulator's PF (here) and,
 * later, a hardware PF through the kernel's admin pass-through and sysfs.
 */
export interface VsicState {
  cntlid: number;
  online: boolean;
  queues: number;
  interrupts: number;
}

export interface DeviceStatus {
  name: string;
  kind: string;
  capacityBytes: number;
  freeBytes: number;
  vsics: VsicState[];
}

export interface VsicGrant {
  queues: number;
  interrupts: number;
  iops: number;
  kibPerSecond: number;
  readOnly: boolean;
}

export interface PfDriver {
  readonly name: string;
  readonly kind: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  status(): Promise<DeviceStatus>;
  /** Secondary controller ids this device offers (VFs). */
  vsicIds(): number[];
  /**
   * A namespace for a new VSA: created (Namespace Management) or, on devices
   * without it, taken from the pre-provisioned pool; `taken` are the nsids
   * the daemon's VSAs already hold. The namespace may be larger than asked
   * for (a pool namespace is used whole): sizeBlocks is what it has.
   */
  createNamespace(sizeBlocks: number, blockBytes: 512 | 4096, taken: ReadonlySet<number>): Promise<{ nsid: number; sizeBlocks: number }>;
  /** Deleted, or erased and returned to the pool: the next VSA never sees this one's data. */
  deleteNamespace(nsid: number): Promise<void>;
  resizeNamespace(nsid: number, sizeBlocks: number): Promise<void>;
  /** Attaches the namespace to the VSIC and brings it online with the given resources and limits. */
  bindVsic(nsid: number, cntlid: number, grant: VsicGrant): Promise<void>;
  /** Takes the VSIC offline (in-flight work stops) and detaches the namespace. */
  unbindVsic(nsid: number, cntlid: number): Promise<void>;
  setLimits(cntlid: number, iops: number, kibPerSecond: number): Promise<void>;
  getLimits(cntlid: number): Promise<{ iops: number; kibPerSecond: number }>;
  /** A connected socket to the VSIC, for the application (passed by SCM_RIGHTS). */
  connectVsic(cntlid: number): number;
  /** Called if the device dies underneath the daemon. */
  onFailure: ((error: Error) => void) | undefined;
}
