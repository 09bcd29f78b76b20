import { SCORE_NAMES, WIDE_K, type EvaluationResult, type ScoreName } from './evaluate.js';
import { renderOodRule, renderShifts } from './shifts-report.js';
import { renderMspComparison } from './msp-comparison.js';

/** What each score is, for the report's table. */
export const SCORE_DESCRIPTIONS: Readonly<Record<ScoreName, string>> = {
  qualm: "the worker's uncertainty: scoreNeighbors on the bundle's k nearest references with the combination fitted on a held-out split of the references, calibrated",
  qualm_with_model: "the fitted combination with the model's own signals beside the embedding's: log(1 - MSP), normalised entropy and the neighbours' vote for the model's label (without the Gaussian's features), fitted on the references with the probe's 5-fold cross-fitted probabilities there (eval/model-combination.ts)",
  qualm_ood: "qualm's out-of-distribution measure, the one its out-of-distribution rule and drift metrics use: with the bundle's Gaussian the larger of the kNN density and class-conditional Mahalanobis percentiles, squared (Sidak), else the kNN density percentile",
  mahalanobis: 'squared Mahalanobis distance to the nearest class mean, shared covariance fitted to the references (Lee et al. 2018)',
  relative_mahalanobis: 'class Mahalanobis distance minus the distance under one Gaussian fitted to all references (Ren et al. 2021)',
  qualm_label_free: "the label-free fallback an unlabelled bundle uses: the mean of the density and relative-density percentiles",
  reverse_neighbor: "1 - reverse-neighbour consistency: the share of the k nearest references that would not count the point inside their own k-NN radius",
  avgdist_k1: 'cosine distance to the nearest reference (AvgDist, k = 1)',
  avgdist_k100: `mean cosine distance to the ${WIDE_K} nearest references (AvgDist, k = ${WIDE_K})`,
  kth_distance: 'cosine distance to the k-th nearest reference, k = the bundle k (Deep kNN, Sun et al. 2022)',
  gmm_ll: '- log-likelihood under a 20-component diagonal GMM fitted to the references',
  l2_norm: '- L2 norm of the embedding before the model\'s L2 normalisation (larger norm read as more reliable, as in repreli)',
  vote_margin: '1 - (top - second) distance-weighted vote share of the k nearest references',
  nc: `1 - neighbourhood consistency: mean pairwise Jaccard of the ${WIDE_K}-NN reference-id sets across the encoders`,
  msp: "1 - the ranked model's own maximum softmax probability (MSP, Hendrycks & Gimpel 2017): the probe's, or the predictions file's",
  entropy: "entropy (nats) of the ranked model's own probability vector: the probe's, or the predictions file's",
  random: 'seeded uniform noise',
};

export interface ReportContext {
  readonly command: string;
  readonly efSearch: number;
  readonly densityWeight: number;
}

/** Plot files written beside the report, by what they show (relative paths). */
export interface PlotFiles {
  readonly riskCoverage: string;
  readonly decileAccuracy: string;
  readonly oodHistograms: string | null;
}

function fmt(x: number | null | undefined, digits = 4): string {
  return x === null || x === undefined ? 'n/a' : x.toFixed(digits);
}

function combinationLine(c: Record<string, unknown>): string {
  if (c.fitted !== true) return `none fitted (${String(c.reason)}); qualm is the fixed combination.`;
  const features = (c.features as string[]).map((f, i) => `${f} ${fmt((c.weights as number[])[i], 3)}`).join(', ');
  return `logistic regression fitted on ${String(c.logistic_rows)} held-out references (probe trained on ${String(c.probe_train)}, held-out probe accuracy ${fmt(c.probe_held_out_accuracy as number)}), isotonic calibration on ${String(c.isotonic_rows)} others (their AUROC ${fmt(c.held_out_auroc as number)}); standardised weights: ${features}.`;
}

/** The Markdown report of one evaluation. */
export function renderReport(result: EvaluationResult & { seconds?: number }, plots: PlotFiles | null, ctx: ReportContext): string {
  const lines: string[] = [];
  lines.push(`# qualm evaluate: ${result.setup}`, '');
  lines.push(`Command: \`${ctx.command}\`${result.seconds === undefined ? '' : ` (${result.seconds.toFixed(0)} s)`}`, '');
  lines.push(
    `- References ${result.n_ref}, test ${result.n_test}, out-of-distribution ${result.n_ood}; encoders: ${result.encoders.join(', ')} (the first is evaluated; all enter NC).`,
    result.target === 'predictions'
      ? `- Errors ranked: the downstream model's predictions (${result.target_source}): test accuracy ${fmt(result.downstream_accuracy)}, mean Brier ${fmt(result.mean_brier)}. qualm's own probe (softmax regression on the first encoder's reference embeddings, which the combination fit uses): test accuracy ${fmt(result.probe_accuracy)}, training accuracy ${fmt(result.probe_train_accuracy)}.`
      : `- Downstream probe (softmax regression on the first encoder's reference embeddings): test accuracy ${fmt(result.probe_accuracy)}, training accuracy ${fmt(result.probe_train_accuracy)}, mean Brier ${fmt(result.mean_brier)}.`,
    `- Bundle k = ${result.k} (QUALM_K), density weight ${ctx.densityWeight}, query ef ${ctx.efSearch}; AvgDist-100 and NC use k = ${result.wide_k} (HNSW recall@${result.wide_k} against exact search on ${Math.min(200, result.n_test)} test points: ${fmt(result.hnsw_recall_at_100)}).`,
    `- Combination: ${combinationLine(result.combination)}`,
    `- Calibration of qualm's predicted_accuracy on the test set: ${
      result.calibration === null
        ? 'none (the bundle predicts no accuracy)'
        : `mean prediction ${fmt(result.calibration.mean_predicted_accuracy)} against accuracy ${fmt(result.calibration.accuracy)}; Brier ${fmt(result.calibration.brier)}; ECE over ${result.calibration.bins} equal-count bins ${fmt(result.calibration.ece)}.`
    }`,
    `- GMM: ${result.gmm.components} diagonal components, ${result.gmm.iterations} EM iterations (${result.gmm.converged ? 'converged' : 'iteration cap'}), ${result.gmm.seconds.toFixed(1)} s.`,
    `- l2_norm measures ${result.l2_norm_of}.`,
    `- Oracle AURC (every error ranked last): ${fmt(result.oracle_aurc)}; a constant score's AURC is the error rate, ${fmt(result.test_error_rate)}.`,
    '',
  );
  const whose = result.target === 'predictions' ? "the downstream model's" : "the probe's";
  lines.push(result.target === 'predictions' ? "## Errors of the downstream model's predictions on the test set" : '## Errors of the probe on the test set', '');
  lines.push(
    `Every score is an uncertainty (higher = more likely wrong): larger tau, rho and AUROC and smaller AURC are better. tau and rho are against the 0/1 error; "tau, ties broken" is the tau-b the score would have with its tied values ordered at random (a function of its AUROC), which puts heavily tied scores such as the vote margin on the footing of tie-free ones; the Brier columns are against ${whose} Brier score.`,
    '',
  );
  lines.push('| score | Kendall tau | tau, ties broken | Spearman rho | AUROC | AURC | tau (Brier) | rho (Brier) | accuracy, most → least certain decile |');
  lines.push('|---|---|---|---|---|---|---|---|---|');
  for (const name of SCORE_NAMES) {
    const m = result.scores[name];
    if (m === undefined) continue;
    lines.push(
      `| ${name} | ${fmt(m.kendall_tau)} | ${fmt(m.kendall_tau_ties_broken)} | ${fmt(m.spearman)} | ${fmt(m.auroc)} | ${fmt(m.aurc)} | ${fmt(m.kendall_tau_brier)} | ${fmt(m.spearman_brier)} | ${m.decile_accuracy.map((a) => a.toFixed(3)).join(' ')} |`,
    );
  }
  lines.push('');
  lines.push(...renderMspComparison(result.msp_comparison, result.target === 'predictions' ? "the downstream model's" : "the probe's"));
  if (Object.keys(result.ood).length > 0) {
    lines.push('## Out of distribution', '');
    lines.push('Out-of-distribution samples are the positives: AUROC higher and FPR at 95% TPR lower are better.', '');
    lines.push('| score | AUROC | FPR at 95% TPR |', '|---|---|---|');
    for (const name of SCORE_NAMES) {
      const o = result.ood[name];
      if (o !== undefined) lines.push(`| ${name} | ${fmt(o.auroc)} | ${fmt(o.fpr95)} |`);
    }
    lines.push('');
  }
  lines.push(...renderOodRule(result.ood_rule));
  if (result.shifts !== undefined) lines.push(...renderShifts(result.shifts));
  lines.push('## Plots', '');
  if (plots === null) {
    lines.push('None: the charting packages (vega, vega-lite) could not be loaded.');
  } else {
    lines.push(`- [risk-coverage curves](${plots.riskCoverage})`, `- [accuracy per uncertainty decile](${plots.decileAccuracy})`);
    if (plots.oodHistograms !== null) lines.push(`- [uncertainty histograms, in vs out of distribution](${plots.oodHistograms})`);
  }
  lines.push('', '## The scores', '');
  for (const name of SCORE_NAMES) if (result.scores[name] !== undefined) lines.push(`- \`${name}\`: ${SCORE_DESCRIPTIONS[name]}`);
  lines.push('');
  return lines.join('\n');
}
