import { corruptionFamilies } from './corruptions.js';
import { MONOTONE_TOLERANCE, type OodRuleSummary, type ShiftReport } from './shifts.js';

const f = (x: number | null | undefined, digits = 3): string => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : x.toFixed(digits));
const pct = (x: number | null | undefined): string => (x === null || x === undefined || Number.isNaN(x) ? 'n/a' : `${(x * 100).toFixed(1)}%`);

/** The report's section on the out-of-distribution rule on held-out data. */
export function renderOodRule(rule: OodRuleSummary): string[] {
  const id = rule.in_distribution;
  const lines = [
    '## The out-of-distribution rule on held-out data',
    '',
    `Rule: ${rule.combination}, flagging at or beyond QUALM_OOD_PERCENTILE = ${rule.percentile} (nominal in-distribution rate ${pct(rule.nominal_in_distribution_rate)}); the Gaussian's reference quantiles ${
      rule.gaussian_cross_fit_folds === null ? 'are in-sample or absent' : `are cross-fitted over ${rule.gaussian_cross_fit_folds} folds`
    }.`,
    '',
    '| set | rule | kNN density alone at sqrt(P) | Mahalanobis alone at sqrt(P) | Mahalanobis alone at P (the old rule) | mean percentile |',
    '|---|---|---|---|---|---|',
    `| test (in distribution) | ${pct(id.rule)} | ${pct(id.density)} | ${pct(id.mahalanobis)} | ${pct(id.mahalanobis_only_at_p)} | ${f(id.mean_percentile)} |`,
  ];
  const o = rule.ood_set;
  if (o !== null) lines.push(`| out-of-distribution set | ${pct(o.rule)} | ${pct(o.density)} | ${pct(o.mahalanobis)} | ${pct(o.mahalanobis_only_at_p)} | ${f(o.mean_percentile)} |`);
  lines.push(
    '',
    `The worker's rules (QUALM_FLAG_THRESHOLD, the OOD rule, QUALM_SHIFT_WINDOW = ${rule.shift_window}) flag ${pct(rule.in_distribution_flag_rate)} of the test set streamed in its order (${pct(rule.in_distribution_sample_flag_rate)} by the per-sample rules alone).`,
    '',
  );
  return lines;
}

/** Label shares for a table cell: every label when there are few, else the largest. */
function shares(names: readonly string[], share: readonly number[]): string {
  const named = share.map((v, c) => ({ name: names[c] ?? String(c), v }));
  if (named.length <= 3) return named.map((x) => `${x.name} ${pct(x.v)}`).join(' / ');
  const top = named.reduce((a, b) => (b.v > a.v ? b : a), named[0] ?? { name: '-', v: NaN });
  return `${top.name} ${pct(top.v)}`;
}

/** The report's section on evaluate --shifts. */
export function renderShifts(s: ShiftReport): string[] {
  const levels = new Map(corruptionFamilies(s.kind).map((fam) => [fam.name, fam.doc]));
  const lines = [
    '## Covariate shifts (--shifts)',
    '',
    `${s.rows_pick.charAt(0).toUpperCase()}${s.rows_pick.slice(1)} (true labels: ${shares(s.label_names, s.label_share)}), corrupted and re-embedded, each set streamed alone through the worker's rules (the shift window starts empty). Detection AUROC: shifted rows against the same rows clean. Error AUROC: the probe's errors on the shifted rows, qualm's uncertainty against the probe's own MSP. Predicted labels: the probe's ${s.label_names.length <= 3 ? 'share per label' : 'most predicted label and its share'}.`,
    '',
    '| set | probe accuracy | mean predicted accuracy | gap | flag rate | per-sample flag rate | OOD rule | detection AUROC qualm_ood / qualm / msp | error AUROC qualm / msp | predicted labels |',
    '|---|---|---|---|---|---|---|---|---|---|',
    `| clean | ${f(s.clean.probe_accuracy)} | ${f(s.clean.mean_predicted_accuracy)} | ${f(s.clean.calibration_gap)} | ${pct(s.clean.flag_rate)} | ${pct(s.clean.sample_flag_rate)} | ${pct(s.clean.ood_rule.rule)} | - | ${f(s.clean.error_auroc.qualm)} / ${f(s.clean.error_auroc.msp)} | ${shares(s.label_names, s.clean.predicted_label_share)} |`,
  ];
  for (const r of s.sets) {
    const d = r.detection_auroc;
    lines.push(
      `| ${r.family} ${r.severity} (${r.level}) | ${f(r.probe_accuracy)} | ${f(r.mean_predicted_accuracy)} | ${f(r.calibration_gap)} | ${pct(r.flag_rate)} | ${pct(r.sample_flag_rate)} | ${pct(r.ood_rule.rule)} | ${f(d.qualm_ood)} / ${f(d.qualm)} / ${f(d.msp)} | ${f(r.error_auroc.qualm)} / ${f(r.error_auroc.msp)} | ${shares(s.label_names, r.predicted_label_share)} |`,
    );
  }
  const wins = s.sets.filter((r) => r.error_auroc.qualm !== null && r.error_auroc.msp !== null && r.error_auroc.qualm > r.error_auroc.msp).length;
  lines.push(
    '',
    `- Flag rate rising with severity (drops within ${MONOTONE_TOLERANCE} allowed) in every family: ${s.non_monotone_families.length === 0 ? 'yes' : `no, not in ${s.non_monotone_families.join(', ')}`}.`,
    `- Sets the probe gets under 20% right: ${s.collapsed.length === 0 ? 'none' : s.collapsed.map((c) => `${c.family} ${c.severity} (accuracy ${f(c.probe_accuracy)}, flagged ${pct(c.flag_rate)}${c.flagged_80 ? '' : ', under 80%'})`).join('; ')}.`,
    `- Error AUROC: qualm above MSP in ${wins} of ${s.sets.length} shifted sets.`,
    '',
    'Families: ' + [...levels.entries()].map(([name, doc]) => `\`${name}\` ${doc}`).join('; ') + '.',
    '',
  );
  return lines;
}
