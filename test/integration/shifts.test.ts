import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';

/**
 * The reduced `qualm evaluate --setup fashion-mnist --shifts` CI runs: the real CLI on 6,000
 * references, 1,000 test images (every family at every severity over all of them) and 500
 * MNIST digits, with the first demo encoder (real ONNX, real HNSW bundle, the fitted
 * combination and the cross-fitted Gaussian). The floors are the issue's: the OOD rule's
 * in-distribution rate near its nominal 1%, a flag rate that rises with severity in every
 * family, and every set the probe gets under 20% right (the images turned by 90 degrees)
 * flagged at 80% or more.
 */

interface Row {
  family: string;
  severity: number;
  probe_accuracy: number;
  mean_predicted_accuracy: number;
  flag_rate: number;
  sample_flag_rate: number;
  detection_auroc: { qualm_ood: number };
}

test('reduced fashion-mnist --shifts: the flag rate rises with severity, a collapsed set is flagged, the OOD rule holds its rate', { timeout: 600_000 }, () => {
  const out = mkdtempSync(join(tmpdir(), 'qualm-shifts-ci-'));
  try {
    const r = spawnSync(
      process.execPath,
      ['bin/qualm.js', 'evaluate', '--setup', 'fashion-mnist', '--models', 'models/fmnist-simclr.onnx', '--limit-ref', '6000', '--limit-test', '1000', '--limit-ood', '500', '--shifts', '--shift-limit', '1000', '--json', '--out', out],
      { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 },
    );
    assert.equal(r.status, 0, r.stderr.slice(-3000));
    const result = JSON.parse(r.stdout.trim().split('\n').at(-1) as string) as {
      ood_rule_in_distribution_rate: number;
      ood_rule: { gaussian_cross_fit_folds: number | null; ood_set: { rule: number } | null };
      shifts: { n_rows: number; clean: { flag_rate: number }; sets: Row[]; non_monotone_families: string[]; collapsed: { family: string; flagged_80: boolean }[] };
    };
    // 1,000 held-out images at a nominal 1%: binomial sd 0.3 points.
    assert.ok(result.ood_rule_in_distribution_rate <= 0.02, `in-distribution OOD rate ${result.ood_rule_in_distribution_rate}`);
    assert.equal(result.ood_rule.gaussian_cross_fit_folds, 5);
    assert.ok((result.ood_rule.ood_set?.rule ?? 0) > 0.3, `MNIST beyond the OOD cut: ${JSON.stringify(result.ood_rule.ood_set)}`);
    const s = result.shifts;
    assert.equal(s.n_rows, 1000);
    assert.equal(s.sets.length, 24, 'eight image families at three severities');
    assert.deepEqual(s.non_monotone_families, [], JSON.stringify(s.sets.map((x) => [x.family, x.severity, x.flag_rate])));
    const turned = s.sets.find((x) => x.family === 'rotation_90' && x.severity === 3);
    assert.ok(turned !== undefined);
    assert.ok(turned.probe_accuracy < 0.2, `rotated by 90 degrees the probe gets ${turned.probe_accuracy} right`);
    assert.ok(turned.flag_rate >= 0.8, `rotated by 90 degrees: ${turned.flag_rate} flagged`);
    assert.ok(s.collapsed.length >= 1 && s.collapsed.every((c) => c.flagged_80), JSON.stringify(s.collapsed));
    for (const x of s.sets) if (x.severity === 3 && x.family !== 'rotation_90') assert.ok(x.detection_auroc.qualm_ood > 0.85, `${x.family} 3: detection AUROC ${x.detection_auroc.qualm_ood}`);
    const report = readFileSync(join(out, 'report.md'), 'utf8');
    assert.match(report, /## Covariate shifts \(--shifts\)/);
    assert.match(report, /\| rotation_90 3 \(share rotated 1\) \|/);
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
});
