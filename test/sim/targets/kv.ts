// Simulation target "kv": the KV store on a VSA whose emulator loses power
// (test/sim/kv-sim.ts); even seeds run `power` durability, odd ones `crash`.
import { runKvCut } from '../kv-sim.js';
import type { SimTarget } from '../target.js';

export const target: SimTarget = { name: 'kv', runCut: runKvCut };

export const { name, runCut } = target;
