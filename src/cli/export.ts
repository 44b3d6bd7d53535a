/** `qkd export`: a model directory to a deployable format. */
import type { Command } from 'commander';
import { exportStudent, resolveModelDir } from '../io/export.js';
import { exportOnnx } from '../io/onnx.js';
import { checkOutFile } from '../io/outdir.js';
import { QkdError } from '../tensor/errors.js';
import { intFlag, warn } from './common.js';

const FORMATS = ['qkd-int8', 'onnx'];
const SPARSE = ['auto', 'dense', 'block', 'csr'];

export function registerExport(program: Command): void {
  program.command('export')
    .description('export a model: --format qkd-int8 (default: compact int8/int4 + sparse directory for the qkd runtime) or onnx')
    .requiredOption('--model <dir>', 'model directory, or a run directory (its model/ is used)')
    .requiredOption('--out <path>', 'output directory (qkd-int8: new or empty) or file (.onnx)')
    .option('--force', 'qkd-int8: replace an earlier export in --out (never another folder)')
    .option('--format <f>', FORMATS.join(' | '), 'qkd-int8')
    .option('--sparse-format <f>', `qkd-int8: storage of the linear layers (${SPARSE.join(', ')}); auto picks per matrix`, 'auto')
    .option('--block <k>', 'qkd-int8: block width of the block format (default: the trained block, else 16)', intFlag('--block', 1))
    .option('--int8', 'ONNX: dynamically quantized int8 linear layers (DynamicQuantizeLinear + MatMulInteger)')
    .option('--kv-cache', 'ONNX: past/present key-value inputs and outputs for incremental decoding')
    .option('--opset <n>', 'ONNX opset (17..21)', intFlag('--opset', 1))
    .action((o) => {
      if (!FORMATS.includes(o.format)) throw new QkdError('E_CONFIG', `--format: '${o.format}' is not supported (${FORMATS.join(', ')})`);
      const model = resolveModelDir(o.model);
      if (o.format === 'onnx') {
        if (o.force !== undefined) throw new QkdError('E_CONFIG', '--force applies to --format qkd-int8 only');
        checkOutFile(o.out, [o.model, model]);
        const r = exportOnnx(model, o.out, { int8: !!o.int8, kvCache: !!o.kvCache, ...(o.opset ? { opset: o.opset } : {}) });
        for (const w of r.warnings) warn(w);
        process.stderr.write(`export: ${r.out}: ${r.bytes} bytes, opset ${r.opset}, ${r.nodes} nodes, inputs ${r.inputs.join(', ')}\n`);
        return;
      }
      if (!SPARSE.includes(o.sparseFormat)) throw new QkdError('E_CONFIG', `--sparse-format: '${o.sparseFormat}' is not one of ${SPARSE.join(', ')}`);
      for (const f of ['int8', 'kvCache', 'opset'] as const) {
        if (o[f] !== undefined) throw new QkdError('E_CONFIG', `--${f === 'kvCache' ? 'kv-cache' : f} applies to --format onnx only`);
      }
      const r = exportStudent(o.model, o.out, { format: o.sparseFormat, force: !!o.force, ...(o.block ? { block: o.block } : {}) });
      for (const w of r.warnings) warn(w);
      const counts: Record<string, number> = {};
      for (const f of Object.values(r.formats)) counts[f] = (counts[f] ?? 0) + 1;
      process.stderr.write(`export: ${r.out}: ${r.bytes} bytes (${r.bitsPerParam.toFixed(2)} bits/parameter over ${r.params} parameters); ` +
        `matrices ${Object.entries(counts).map(([f, n]) => `${n} ${f}`).join(', ')}\n`);
    });
}
