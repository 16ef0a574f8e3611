// Simulation target "mailq": the mail queue on a VSA whose emulator loses
// power (test/sim/mailq-sim.ts); even seeds commit with grouped Flushes, odd
// ones with FUA writes.
import { runMailqCut } from '../mailq-sim.js';
import type { SimTarget } from '../target.js';

export const target: SimTarget = { name: 'mailq', runCut: runMailqCut };

export const { name, runCut } = target;
