/**
 * Typed access to a controller's BAR0 registers. 64-bit registers are two
 * 32-bit accesses, low half first (the order the spec gives for hosts that
 * cannot do 64-bit MMIO).
 */
import { REG_ACQ_OFFSET, REG_AQA_OFFSET, REG_ASQ_OFFSET, REG_CAP_OFFSET, REG_CC_OFFSET, REG_CSTS_OFFSET, REG_VS_OFFSET } from '../nvme/spec.js';

export class Registers {
  private readonly words: Uint32Array;

  constructor(bar: ArrayBuffer) {
    this.words = new Uint32Array(bar);
  }

  read32(offset: number): number {
    return Atomics.load(this.words, offset / 4) >>> 0;
  }

  write32(offset: number, value: number): void {
    Atomics.store(this.words, offset / 4, value >>> 0);
  }

  read64(offset: number): bigint {
    const low = BigInt(this.read32(offset));
    const high = BigInt(this.read32(offset + 4));
    return (high << 32n) | low;
  }

  write64(offset: number, value: number | bigint): void {
    const big = BigInt(value);
    this.write32(offset, Number(big & 0xffffffffn));
    this.write32(offset + 4, Number(big >> 32n));
  }

  get cap(): bigint {
    return this.read64(REG_CAP_OFFSET);
  }
  get vs(): number {
    return this.read32(REG_VS_OFFSET);
  }
  get cc(): number {
    return this.read32(REG_CC_OFFSET);
  }
  set cc(value: number) {
    this.write32(REG_CC_OFFSET, value);
  }
  get csts(): number {
    return this.read32(REG_CSTS_OFFSET);
  }
  set aqa(value: number) {
    this.write32(REG_AQA_OFFSET, value);
  }
  set asq(iova: number) {
    this.write64(REG_ASQ_OFFSET, iova);
  }
  set acq(iova: number) {
    this.write64(REG_ACQ_OFFSET, iova);
  }
}
