#!/usr/bin/env node
// The offpath-mailq command: runs cli.ts from the sources through tsx.
import { register } from 'tsx/esm/api';

register();
await import('./cli.ts');
