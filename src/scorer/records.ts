import { encodeFloat32Base64, type RecordSource, type ReviewRecord, type ScoreRecord } from '../contracts/index.js';
import type { IndexSnapshot, Neighbors } from '../index/index.js';
import { explain, type FlagDecision, type Score } from '../scoring/index.js';
import { signalsWire } from '../signals.js';

/** Everything a score or review record is made of: one scored sample in its context. */
export interface RecordParts<S extends RecordSource> {
  readonly id: string;
  readonly meta: Readonly<Record<string, unknown>> | undefined;
  readonly source: S;
  readonly score: Score;
  readonly decision: FlagDecision | null;
  readonly neighbors: Neighbors;
  readonly embedding: ArrayLike<number>;
  readonly snapshot: Pick<IndexSnapshot, 'version' | 'labelName'>;
  readonly model: { readonly version: string; readonly sha256: string; readonly dim: number };
  readonly flagPolicy: string;
  readonly scoredAt: string;
}

/** The score record of one sample (the scores topic, `qualm score`). */
export function scoreRecord<S extends RecordSource>(p: RecordParts<S>): ScoreRecord<S> {
  return {
    id: p.id,
    meta: p.meta ?? null,
    uncertainty: p.score.uncertainty,
    predicted_accuracy: p.score.predictedAccuracy,
    flagged: p.decision !== null,
    reason: p.decision?.reason ?? null,
    rule: p.decision?.rule ?? null,
    signals: signalsWire(p.score.signals),
    suggested_label: p.snapshot.labelName(p.score.suggestedLabel),
    index_version: p.snapshot.version,
    model_version: p.model.version,
    scored_at: p.scoredAt,
    source: p.source,
  };
}

/** The review record of one flagged sample: its score, neighbours, an explanation and its embedding. */
export function reviewRecord<S extends RecordSource>(p: RecordParts<S> & { readonly decision: FlagDecision }): ReviewRecord<S> {
  const { score, decision, neighbors: nb, snapshot: snap } = p;
  const suggested = snap.labelName(score.suggestedLabel);
  return {
    id: p.id,
    meta: p.meta ?? null,
    uncertainty: score.uncertainty,
    predicted_accuracy: score.predictedAccuracy,
    signals: signalsWire(score.signals),
    neighbors: nb.ids.map((id, j) => ({
      ref_id: id,
      distance: nb.distances[j] as number,
      label: nb.labels === null ? null : snap.labelName(nb.labels[j] as number),
    })),
    suggested_label: suggested,
    reason: decision.reason,
    rule: decision.rule,
    explanation: explain(decision.reason, score.signals, suggested, score.predictedAccuracy),
    flag_policy: p.flagPolicy,
    index_version: snap.version,
    model_version: p.model.version,
    scored_at: p.scoredAt,
    source: p.source,
    embedding: { model_sha256: p.model.sha256, dim: p.model.dim, b64: encodeFloat32Base64(p.embedding) },
  };
}
