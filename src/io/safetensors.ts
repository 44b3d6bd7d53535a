/**
 * safetensors files on disk (Node): the codec of io/safetensors-codec.ts (re-exported here, so Node
 * code imports one module) plus reading a regular file tensor by tensor and writing atomically.
 */
import { writeFileAtomic } from './atomic.js';
import { openRegularFile, readAt } from './read-file.js';
import { encodeSafetensors, fmt, parseFrom, type SafetensorsFile, type TensorToWrite } from './safetensors-codec.js';

export * from './safetensors-codec.js';

/** Reads a safetensors file (regular files only); each tensor is read by itself, so files beyond 2 GB work too. */
export function readSafetensors(path: string): SafetensorsFile {
  const f = openRegularFile(path, 'safetensors file');
  try {
    const read = (offset: number, length: number): Uint8Array => {
      const out = new Uint8Array(length);
      const got = readAt(f.fd, out, offset);
      if (got < length) throw fmt(path, `unexpected end of file at byte ${offset + got} (file changed while reading?)`);
      return out;
    };
    return parseFrom(path, { size: f.size, read });
  } finally {
    f.close();
  }
}

/** Writes a safetensors file atomically. */
export function writeSafetensors(
  path: string, tensors: Record<string, TensorToWrite> | Map<string, TensorToWrite>, metadata?: Record<string, string>,
): void {
  writeFileAtomic(path, encodeSafetensors(tensors, metadata, path));
}
