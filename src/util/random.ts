/** mulberry32: a small, fast seeded generator in [0, 1), so that streams and trainings are reproducible. */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A standard normal draw (Box–Muller) from a uniform generator such as seededRandom's. */
export function gaussian(rnd: () => number): number {
  return Math.sqrt(-2 * Math.log(1 - rnd())) * Math.cos(2 * Math.PI * rnd());
}

/** Shuffles `a` in place (Fisher–Yates, from the end) with a uniform generator such as seededRandom's; returns it. */
export function shuffleInPlace<T extends { length: number; [i: number]: number }>(a: T, rnd: () => number): T {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1));
    const t = a[i] as number;
    a[i] = a[j] as number;
    a[j] = t;
  }
  return a;
}

/**
 * `n` indices of items with these labels, the labels as balanced as the set allows: each label
 * an equal share (give or take one); a label with too few items gives all it has and the others
 * fill up (water-filling, the smallest labels first). Within a label the pick is a shuffle by
 * `rnd` (labels in ascending order, each shuffled in turn). Returned label by label, smallest
 * label group first: callers sort or shuffle it.
 */
export function balancedPick(labels: ArrayLike<number>, n: number, rnd: () => number): number[] {
  const byLabel = new Map<number, number[]>();
  for (let i = 0; i < labels.length; i++) {
    const l = labels[i] as number;
    const list = byLabel.get(l);
    if (list === undefined) byLabel.set(l, [i]);
    else list.push(i);
  }
  const groups = [...byLabel.entries()].sort((a, b) => a[0] - b[0]).map(([, idx]) => shuffleInPlace(idx, rnd));
  let left = n;
  const picked: number[] = [];
  [...groups]
    .sort((a, b) => a.length - b.length)
    .forEach((g, gi, bySize) => {
      const take = Math.min(g.length, Math.ceil(left / (bySize.length - gi)));
      picked.push(...g.slice(0, take));
      left -= take;
    });
  return picked;
}
