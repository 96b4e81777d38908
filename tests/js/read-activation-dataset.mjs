// Reads a datasets.save_to_disk folder with apache-arrow (JavaScript) and prints, as JSON, what the test compares:
// the data files state.json lists, the schema's "huggingface" metadata, and per column its type, row count, the
// float64 sum of every value in row order, and the first values. Usage: node read-activation-dataset.mjs DIR
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { tableFromIPC } from 'apache-arrow';

const dir = process.argv[2];
const state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8'));
const columns = {};
let metadata = null;
for (const { filename } of state._data_files) {
  const table = tableFromIPC(readFileSync(join(dir, filename)));
  metadata ??= table.schema.metadata.get('huggingface');
  for (const field of table.schema.fields) {
    const c = (columns[field.name] ??= { type: String(field.type), rows: 0, sum: 0, first: [] });
    for (const data of table.getChild(field.name).data) {
      c.rows += data.length;
      // Down the fixed-size lists to the values: row r of the outer list is values [r * size, (r + 1) * size).
      let d = data, start = d.offset, count = d.length;
      while (d.type.listSize !== undefined) {
        const size = d.type.listSize;
        d = d.children[0];
        start = start * size + d.offset;
        count *= size;
      }
      const values = d.values.subarray(start, start + count);
      const isHalf = String(d.type) === 'Float16';
      for (let i = 0; i < values.length; i++) {
        const v = isHalf ? halfToNumber(values[i]) : Number(values[i]);
        c.sum += v;
        if (c.first.length < 8) c.first.push(v);
      }
    }
  }
}
console.log(JSON.stringify({ files: state._data_files.map(f => f.filename), metadata, columns }));

function halfToNumber(h) {
  const sign = h & 0x8000 ? -1 : 1, exponent = (h >> 10) & 0x1f, fraction = h & 0x3ff;
  if (exponent === 0) return sign * fraction * 2 ** -24;
  if (exponent === 31) return fraction ? NaN : sign * Infinity;
  return sign * (1 + fraction / 1024) * 2 ** (exponent - 15);
}
