/**
 * Preloaded into a CLI child with `node --import` by the hostile tests: at exit, writes the process's
 * peak resident memory (maxRSS, bytes) as one last stderr line, `qkd-test-maxrss N`.
 */
import { writeSync } from 'node:fs';

process.on('exit', () => {
  writeSync(2, `\nqkd-test-maxrss ${process.resourceUsage().maxRSS * 1024}\n`);
});
