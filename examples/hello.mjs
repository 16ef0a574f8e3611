// Open a VSA by capability, write a block, read it back. Run from the
// package folder while `npm start` runs: node examples/hello.mjs <token>
import { open } from 'offpath';

const vsa = await open({ capability: process.argv[2] });
const block = vsa.alloc(vsa.blockSize); // registered memory: the device DMAs straight into it
block.set(new TextEncoder().encode(`hello from pid ${process.pid}`));
await vsa.write(0, block, { fua: true });
block.fill(0);
await vsa.read(0, block);
console.log(`${vsa.name}: ${vsa.size} bytes; block 0 says "${new TextDecoder().decode(block).replace(/\0+$/, '')}"`);
await vsa.close();
