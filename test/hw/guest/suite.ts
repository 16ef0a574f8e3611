/**
 * The guest suite (runs inside the VM rig, as root): the daemon on the
 * hardware PF with applications opening VSAs by capability (daemon.ts), then
 * VFs set up by hand and driven through VFIO directly (vfio.ts). Writes
 * manifest.json to the share for the host to verify and prints
 * "N passed, N failed".
 *
 *   node --import tsx test/hw/run.ts node --import tsx test/hw/guest/suite.ts [name filter...]
 *
 * Tests run in order and build on each other: a filter keeps the setup
 * steps. Each is bounded by the harness's TEST_TIMEOUT_MS.
 */
import { runTests } from './harness.js';
import './daemon.js';
import { describeOutstanding } from './vfio.js';

await runTests(process.argv.slice(2), describeOutstanding);
