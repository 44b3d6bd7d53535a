/**
 * The plain (non-terminal) progress line: its ETA counts the rate from the first update, so a run
 * resumed at step 2500 of 3000 reports the time its remaining steps take, not a few seconds.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { progress } from '../../src/cli/common.js';

test('progress: a resumed run\'s ETA is its remaining steps at its own rate', () => {
  const err = process.stderr as unknown as { isTTY: boolean | undefined; write: (s: string) => boolean };
  const tty = err.isTTY, write = err.write, now = Date.now;
  const lines: string[] = [];
  let clock = 1_000_000;
  try {
    err.isTTY = false;
    err.write = (s: string) => { lines.push(s); return true; };
    Date.now = () => clock;
    const p = progress('distill');
    p.update(2500, 3000);            // resumed here: no rate yet
    clock += 10_000; p.update(2510, 3000);   // 10 steps in 10 s: 490 left, 490 s
    clock += 10_000; p.update(2520, 3000);   // 20 in 20 s: 480 left
    p.stop();
  } finally {
    err.isTTY = tty; err.write = write; Date.now = now;
  }
  assert.equal(lines.length, 3, lines.join(''));
  assert.match(lines[0]!, /^distill: 2500\/3000 \(83\.3%\) \| 0 s \| ETA \?/);
  assert.match(lines[1]!, /^distill: 2510\/3000 .* \| 10 s \| ETA 490 s/);
  assert.match(lines[2]!, /^distill: 2520\/3000 .* \| 20 s \| ETA 480 s/);
});
