/**
 * Writes test/fixtures/tasks/requests.json: the token ids of the log-likelihood requests of the
 * first 50 items of every task (suite built with --limit 50 from Brown test, fixture tokenizer),
 * which test/fixtures/tasks/make_reference.py scores with PyTorch. Not a test; run from the repo root:
 *   npm run build && node dist/test/eval/tasks-fixture.js && /usr/bin/python3 -B test/fixtures/tasks/make_reference.py
 */
import { writeFileSync } from 'node:fs';
import { loadTokenizer } from '../../src/data/tokenizer-node.js';
import { buildSuite, encodeSuite, type TaskSuite } from '../../src/eval/tasks/index.js';
import { fixture } from '../helpers.js';

export const REFERENCE_ITEMS = 50;
export const REQUESTS_PATH = 'test/fixtures/tasks/requests.json';

/** One request per line: small diffs when the suite changes, and still plain JSON. */
export function requestsJson(suite: TaskSuite = buildSuite({ limit: REFERENCE_ITEMS })): string {
  const tok = loadTokenizer(fixture('brown-llama-teacher'));
  const lines: string[] = [];
  for (const t of encodeSuite(suite, tok)) {
    t.spans.forEach(([s, e], item) => {
      for (let r = s; r < e; r++) {
        const q = t.requests[r - t.offset];
        lines.push(JSON.stringify({ task: t.name, item, context: q.context, continuation: q.continuation }));
      }
    });
  }
  return `{"suite": ${JSON.stringify(suite.hash)}, "requests": [\n${lines.join(',\n')}\n]}\n`;
}

if (process.argv[1]?.endsWith('tasks-fixture.js')) {
  writeFileSync(REQUESTS_PATH, requestsJson());
  process.stderr.write(`wrote ${REQUESTS_PATH}\n`);
}
