/** A CSV line that cannot be split: an open quote, or text after a closing quote. */
export class CsvLineError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CsvLineError';
  }
}

/**
 * Splits one CSV line (RFC 4180 quoting: a field in double quotes may hold commas and doubled
 * quotes; fields cannot span lines). Throws CsvLineError on a malformed line.
 */
export function splitCsvLine(line: string): string[] {
  const out: string[] = [];
  let i = 0;
  for (;;) {
    if (line[i] === '"') {
      let field = '';
      i++;
      for (;;) {
        const q = line.indexOf('"', i);
        if (q === -1) throw new CsvLineError('a quoted field has no closing quote (fields cannot span lines)');
        field += line.slice(i, q);
        if (line[q + 1] === '"') {
          field += '"';
          i = q + 2;
          continue;
        }
        i = q + 1;
        break;
      }
      out.push(field);
      if (i < line.length && line[i] !== ',') throw new CsvLineError(`unexpected ${JSON.stringify(line[i])} after a quoted field`);
    } else {
      const c = line.indexOf(',', i);
      out.push(c === -1 ? line.slice(i) : line.slice(i, c));
      i = c === -1 ? line.length : c;
    }
    if (i >= line.length) return out;
    i++; // the comma
  }
}
