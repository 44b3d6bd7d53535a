/**
 * Every recipe and example the project ships parses and validates (the README and docs point users at
 * them), and the values that define each recipe are what its name says.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { makeDistillConfig } from '../../src/distill/config.js';
import { makeTrainConfig, readConfigFile } from '../../src/train/config.js';
import { makePipelineConfig } from '../../src/pipeline/config.js';
import { fixture } from '../helpers.js';

/** The recipe whose 3-seed measurements the README and docs give for recipes/recommended.yaml. */
const MEASURED = 'recipes/quality/tinit-int8a8-block4-e4-c256-rep-a02-t1-sparse90-3k.yaml';

const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true })
  .flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : /\.ya?ml$/.test(e.name) ? [join(d, e.name)] : []));

test('every recipe in recipes/ validates as a distillation recipe, and says what its name says', () => {
  const files = walk('recipes');
  assert.ok(files.length >= 10, `${files.length} recipes`);
  for (const f of files) {
    const raw = readConfigFile(f);
    const c = makeDistillConfig(raw, raw.teacher ? {} : { teacher: fixture('brown-llama-teacher') }, f);
    const name = f.split('/').pop()!;
    if (/int8/.test(name)) assert.equal(c.quant?.bits, 8, `${f}: int8 weights`);
    if (/int4/.test(name)) assert.equal(c.quant?.bits, 4, `${f}: int4 weights`);
    if (/a8/.test(name)) assert.equal(c.quant?.actBits, 8, `${f}: int8 activations`);
    if (/sparse90/.test(name)) assert.equal(c.sparsity?.target, 0.9, `${f}: 90% sparse`);
    if (/block(\d+)/.test(name)) assert.equal(c.sparsity?.block, Number(/block(\d+)/.exec(name)![1]), `${f}: block width`);
    if (/-c(\d+)-/.test(name)) assert.equal(c.context, Number(/-c(\d+)-/.exec(name)![1]), `${f}: training context`);
    if (/-(\d+)k\.yaml$/.test(name)) assert.equal(c.steps, 1000 * Number(/-(\d+)k\.yaml$/.exec(name)![1]), `${f}: steps`);
    if (/-e4-/.test(name)) assert.equal(c.quant?.embedBits, 4, `${f}: int4 embedding`);
    if (/-ce\.yaml$/.test(name)) assert.equal(c.alpha, 1, `${f}: labels only`);
    if (/-kd\.yaml$/.test(name)) assert.ok(c.alpha < 1, `${f}: distillation`);
  }
  const rec = makeDistillConfig(readConfigFile('recipes/recommended.yaml'), { teacher: fixture('brown-llama-teacher') }, 'recommended');
  assert.deepEqual([rec.quant?.bits, rec.quant?.embedBits, rec.quant?.actBits, rec.sparsity?.target, rec.init.from, rec.student.preset],
    [8, 4, 8, 0.9, 'teacher', 'teacher']);
  // the recommended recipe is the measured one (docs/distillation.md) with the teacher left to the user
  const { teacher: _t, student: _s, ...measured } = readConfigFile(MEASURED);
  const { student: _r, ...recommended } = readConfigFile('recipes/recommended.yaml');
  assert.deepEqual(recommended, measured, `recipes/recommended.yaml differs from ${MEASURED} beyond teacher and student preset`);
});

test('the examples validate as training configs, and the default pipeline config is valid', () => {
  for (const f of walk('examples')) makeTrainConfig(readConfigFile(f), {}, f);
  const p = makePipelineConfig({}, {}, 'defaults');
  assert.equal(p.recipe, 'recipes/recommended.yaml');
  assert.equal(p.text, null);
});
