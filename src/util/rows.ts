/** Rows `rows` of a row-major matrix of `dim` columns, copied into a new matrix in that order. */
export function gatherRows(matrix: Float32Array, dim: number, rows: ArrayLike<number>): Float32Array {
  const out = new Float32Array(rows.length * dim);
  for (let i = 0; i < rows.length; i++) {
    const r = rows[i] as number;
    out.set(matrix.subarray(r * dim, (r + 1) * dim), i * dim);
  }
  return out;
}
