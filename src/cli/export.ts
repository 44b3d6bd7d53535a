/** `qkd export`: a model directory to a deployable format. */
import type { Command } from 'commander';
import { exportOnnx } from '../io/onnx.js';
import { QkdError } from '../tensor/errors.js';
import { intFlag, warn } from './common.js';

export function registerExport(program: Command): void {
  program.command('export')
    .description('export a model: --format onnx (standard ONNX for onnxruntime)')
    .requiredOption('--model <dir>', 'model directory (a run directory\'s model/ or any model qkd loads)')
    .requiredOption('--out <path>', 'output file (.onnx)')
    .option('--format <f>', 'onnx', 'onnx')
    .option('--int8', 'ONNX: dynamically quantized int8 linear layers (DynamicQuantizeLinear + MatMulInteger)')
    .option('--kv-cache', 'ONNX: past/present key-value inputs and outputs for incremental decoding')
    .option('--opset <n>', 'ONNX opset (17..21)', intFlag('--opset', 1))
    .action((o) => {
      if (o.format !== 'onnx') throw new QkdError('E_CONFIG', `--format: '${o.format}' is not supported (onnx)`);
      const r = exportOnnx(o.model, o.out, { int8: !!o.int8, kvCache: !!o.kvCache, ...(o.opset ? { opset: o.opset } : {}) });
      for (const w of r.warnings) warn(w);
      process.stderr.write(`export: ${r.out}: ${r.bytes} bytes, opset ${r.opset}, ${r.nodes} nodes, inputs ${r.inputs.join(', ')}\n`);
    });
}
