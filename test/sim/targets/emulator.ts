// Simulation target "emulator": the emulator's backing store in power-loss
// mode (test/sim/emulator-sim.ts).
import { runEmulatorCut } from '../emulator-sim.js';
import type { SimTarget } from '../target.js';

export const target: SimTarget = {
  name: 'emulator',
  async runCut(seed, options) {
    return runEmulatorCut(seed, options);
  },
};

export const { name, runCut } = target;
