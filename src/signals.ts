/**
 * The signal vocabulary, declared once. Every signal qualm computes for a sample is one row:
 * its name in code (the key), its wire name in review and score records, its doc, whether it
 * can be missing, the combination feature made from it (if any) and whether the
 * `qualm_signal` histogram observes it. scoring/ derives its `Signals` type and the
 * combination features from this table, contracts/ the `SignalsRecord` type, the scorer the
 * record, the worker the metric labels, `qualm score` its CSV columns; a test checks the docs.
 *
 * It lives beside errors.ts, outside every module, because both contracts/ (the records) and
 * scoring/ (the signals) need it and neither may import the other. Adding a signal is one row
 * here plus its computation in scoring/score.ts (and, for a new feature, its column in
 * COMBINATION_FEATURE_ORDER). Row order is the key order of the records' `signals` object.
 */

/** How a combination feature is made from its signal, oriented as uncertainty (larger = more likely wrong). */
export type FeatureOrientation = 'as_is' | 'complement' | 'log';

export interface SignalSpec {
  /** snake_case name in review and score records, CSV columns and metric labels. */
  readonly wire: string;
  /** What it measures, for readers of the records. */
  readonly doc: string;
  /** True when some bundles cannot compute it (no labels, no radii, no Gaussian): then null. */
  readonly nullable: boolean;
  /** The combination feature made from it; a missing (null) signal gives the feature 1, its worst value. */
  readonly feature?: { readonly name: string; readonly orient: FeatureOrientation };
  /** True for signals in [0, 1] that the `qualm_signal` histogram observes (label `signal` = wire name). */
  readonly metric: boolean;
}

export const SIGNALS = {
  meanKnnDistance: {
    wire: 'mean_knn_distance',
    doc: 'Mean distance to the k nearest references.',
    nullable: false,
    feature: { name: 'log_mean_knn_distance', orient: 'log' },
    metric: false,
  },
  kthKnnDistance: { wire: 'kth_knn_distance', doc: 'Distance to the k-th nearest reference.', nullable: false, metric: false },
  densityPercentile: {
    wire: 'density_percentile',
    doc: "Share of references whose own leave-one-out mean kNN distance is below this sample's, in [0,1].",
    nullable: false,
    feature: { name: 'density_percentile', orient: 'as_is' },
    metric: true,
  },
  relativeDensity: {
    wire: 'relative_density',
    doc: "Mean kNN distance over the neighbours' own mean kNN distances (about 1 inside a cluster, larger outside).",
    nullable: false,
    metric: false,
  },
  relativeDensityPercentile: {
    wire: 'relative_density_percentile',
    doc: 'Share of references whose own relative density is lower, in [0,1].',
    nullable: false,
    feature: { name: 'relative_density_percentile', orient: 'as_is' },
    metric: true,
  },
  labelAgreement: {
    wire: 'label_agreement',
    doc: 'Distance-weighted vote share of the top neighbour label, in [0,1]; null without labels.',
    nullable: true,
    feature: { name: 'label_disagreement', orient: 'complement' },
    metric: true,
  },
  labelEntropy: {
    wire: 'label_entropy',
    doc: 'Entropy of the neighbour label distribution, normalised to [0,1]; null without labels.',
    nullable: true,
    feature: { name: 'label_entropy', orient: 'as_is' },
    metric: false,
  },
  kthKnnPercentile: {
    wire: 'kth_knn_percentile',
    doc: "Share of references whose own leave-one-out k-th neighbour distance is below this sample's, in [0,1].",
    nullable: false,
    feature: { name: 'kth_percentile', orient: 'as_is' },
    metric: false,
  },
  labelMargin: {
    wire: 'label_margin',
    doc: 'Vote share of the top label minus that of the second, in [0,1]; null without labels.',
    nullable: true,
    feature: { name: 'margin_uncertainty', orient: 'complement' },
    metric: false,
  },
  reverseNeighborConsistency: {
    wire: 'reverse_neighbor_consistency',
    doc: 'Share of the neighbours that count this sample inside their own k-NN radius (their leave-one-out k-th distance), in [0,1]; label free; null for a bundle without radii.',
    nullable: true,
    feature: { name: 'reverse_neighbor_inconsistency', orient: 'complement' },
    metric: true,
  },
  mahalanobisPercentile: {
    wire: 'mahalanobis_percentile',
    doc: 'Share of references nearer their nearest class mean (Mahalanobis, shared covariance; Lee et al. 2018) than this sample is to its own, in [0,1]; null without the bundle\'s Gaussian.',
    nullable: true,
    feature: { name: 'mahalanobis_percentile', orient: 'as_is' },
    metric: true,
  },
  relativeMahalanobisPercentile: {
    wire: 'relative_mahalanobis_percentile',
    doc: 'The same for the relative Mahalanobis distance (class minus global; Ren et al. 2021), in [0,1]; null without the Gaussian.',
    nullable: true,
    feature: { name: 'relative_mahalanobis_percentile', orient: 'as_is' },
    metric: false,
  },
  modelConfidence: {
    wire: 'model_confidence',
    doc: "The downstream model's own largest probability (MSP), from the sample's `prediction`, in [0,1]; null without a usable prediction.",
    nullable: true,
    metric: false,
  },
  modelEntropy: {
    wire: 'model_entropy',
    doc: "Entropy of the model's probabilities over log(labels), in [0,1] (a label with a confidence spreads the rest evenly); null without a usable prediction.",
    nullable: true,
    metric: false,
  },
  modelNeighborAgreement: {
    wire: 'model_neighbor_agreement',
    doc: "Share of the neighbours' distance-weighted label vote that goes to the model's predicted label, in [0,1]; null without a usable prediction or without labels.",
    nullable: true,
    metric: false,
  },
  modelPredictionUsed: {
    wire: 'model_prediction_used',
    doc: "1 when the bundle's combination with the model's signals scored the sample; 0 when the bundle has one but the sample carried no usable prediction, so the embedding-only combination scored it; null when the bundle has none.",
    nullable: true,
    metric: false,
  },
  modelGaussianLogOdds: {
    wire: 'model_gaussian_log_odds',
    doc: "The bundle's class-conditional Gaussian as a second classifier: its log-odds of the likeliest other label against the model's predicted label, (d_predicted − min over other labels d)/2 with d the squared Mahalanobis distances (positive: the Gaussian prefers another label); null without a usable prediction or without the Gaussian.",
    nullable: true,
    metric: false,
  },
} as const satisfies Record<string, SignalSpec>;

type Table = typeof SIGNALS;
/** A signal's name in code. */
export type SignalKey = keyof Table;
type ValueOf<K extends SignalKey> = Table[K]['nullable'] extends true ? number | null : number;

/** The signals of one sample, by their names in code (scoring/'s `Signals`). */
export type SignalValues = { readonly [K in SignalKey]: ValueOf<K> };

/** A signal's wire name. */
export type SignalWireName = Table[SignalKey]['wire'];

/** The signals of one sample as the records carry them (contracts/'s `SignalsRecord`). */
export type SignalsWire = { [K in SignalKey as Table[K]['wire']]: ValueOf<K> };

/** The code names, in record order. */
export const SIGNAL_KEYS = Object.keys(SIGNALS) as SignalKey[];

/** The wire names, in record order (the `signals` object's keys, `qualm score`'s CSV columns). */
export const SIGNAL_WIRE_NAMES: readonly SignalWireName[] = SIGNAL_KEYS.map((k) => SIGNALS[k].wire);

/** The signals the `qualm_signal` histogram observes, by code name and label. */
export const METRIC_SIGNALS: readonly { readonly key: SignalKey; readonly label: SignalWireName }[] = SIGNAL_KEYS.filter((k) => SIGNALS[k].metric).map((k) => ({
  key: k,
  label: SIGNALS[k].wire,
}));

type FeatureOf<K extends SignalKey> = Table[K] extends { readonly feature: { readonly name: infer N } } ? N : never;
/** The name of a combination feature, as a bundle stores it. */
export type SignalFeatureName = { [K in SignalKey]: FeatureOf<K> }[SignalKey];

/**
 * The column order of the combination features: the order of a fit's default feature list
 * (eval/combination-fit.ts) and so of new bundles' stored weights. Kept as fitted before the
 * table existed; `Exhaustive` below fails to compile when a feature is missing here.
 */
export const COMBINATION_FEATURE_ORDER = [
  'density_percentile',
  'kth_percentile',
  'relative_density_percentile',
  'log_mean_knn_distance',
  'label_disagreement',
  'label_entropy',
  'margin_uncertainty',
  'reverse_neighbor_inconsistency',
  'mahalanobis_percentile',
  'relative_mahalanobis_percentile',
] as const satisfies readonly SignalFeatureName[];

type Exhaustive<Missing extends never> = Missing;
export type _EveryFeatureHasAColumn = Exhaustive<Exclude<SignalFeatureName, (typeof COMBINATION_FEATURE_ORDER)[number]>>;

/** The signal each combination feature is made of, and how. */
export const FEATURE_SOURCES: Readonly<Record<SignalFeatureName, { readonly key: SignalKey; readonly orient: FeatureOrientation }>> = Object.fromEntries(
  SIGNAL_KEYS.flatMap((k) => {
    const spec: SignalSpec = SIGNALS[k];
    return spec.feature === undefined ? [] : [[spec.feature.name, { key: k, orient: spec.feature.orient }]];
  }),
) as Record<SignalFeatureName, { key: SignalKey; orient: FeatureOrientation }>;

/** The record form of one sample's signals, keys in table order. */
export function signalsWire(s: SignalValues): SignalsWire {
  const out: Record<string, number | null> = {};
  for (const k of SIGNAL_KEYS) out[SIGNALS[k].wire] = s[k];
  return out as SignalsWire;
}
