import { decodeFloat32Base64, type LabelRecord, type ReviewRecord } from '../contracts/index.js';
import type { Transport } from '../transport/index.js';

/** A reviewed sample that becomes a reference of the next bundle. */
export interface ReviewedReference {
  /** Reference id: `review:` + the sample's id. */
  readonly id: string;
  readonly embedding: Float32Array;
  /** Index into the bundle's label names. */
  readonly label: number;
  readonly reviewer: string;
  readonly reviewedAt: string;
}

export const REVIEWED_ID_PREFIX = 'review:';

/** Why a label record did not become a reference, with how many. */
export type SkipReason = 'bad_label_record' | 'no_review_record' | 'other_model' | 'bad_embedding' | 'unknown_label' | 'already_a_reference';

export interface FoldResult {
  readonly references: ReviewedReference[];
  readonly skipped: Partial<Record<SkipReason, number>>;
}

export interface FoldOptions {
  /** The encoder the bundle is built for: review embeddings of another model are left out. */
  readonly modelSha256: string;
  readonly dim: number;
  readonly labelNames: readonly string[];
  /** Reference ids the bundle already has (a sample reviewed twice is added once). */
  readonly existingIds: ReadonlySet<string>;
}

/**
 * Joins reviewers' label records with the review records they answer (by sample id) and
 * turns each into a reference: the embedding the review record carries, the reviewer's
 * label. The latest label record of an id wins; every record left out is counted by reason.
 * Pure: the caller reads the topics.
 */
export function foldReviews(reviews: Iterable<ReviewRecord>, labels: Iterable<LabelRecord | null>, opts: FoldOptions): FoldResult {
  const skipped: Partial<Record<SkipReason, number>> = {};
  const skip = (r: SkipReason): void => {
    skipped[r] = (skipped[r] ?? 0) + 1;
  };
  const reviewById = new Map<string, ReviewRecord>();
  for (const r of reviews) reviewById.set(r.id, r);
  const latest = new Map<string, LabelRecord>();
  for (const l of labels) {
    if (l === null) skip('bad_label_record');
    else latest.set(l.id, l);
  }
  const labelIndex = new Map(opts.labelNames.map((name, i) => [name, i]));
  const references: ReviewedReference[] = [];
  for (const [id, l] of latest) {
    const review = reviewById.get(id);
    if (review === undefined) {
      skip('no_review_record');
      continue;
    }
    const refId = REVIEWED_ID_PREFIX + id;
    if (opts.existingIds.has(refId)) {
      skip('already_a_reference');
      continue;
    }
    if (review.embedding?.model_sha256 !== opts.modelSha256) {
      skip('other_model');
      continue;
    }
    const embedding = decodeFloat32Base64(review.embedding.b64);
    if (embedding === undefined || embedding.length !== opts.dim || review.embedding.dim !== opts.dim || !embedding.every(Number.isFinite)) {
      skip('bad_embedding');
      continue;
    }
    const label = labelIndex.get(l.label);
    if (label === undefined) {
      skip('unknown_label');
      continue;
    }
    references.push({ id: refId, embedding, label, reviewer: l.reviewer, reviewedAt: l.reviewed_at });
  }
  return { references, skipped };
}

/** Every review record on `topic`, read to its current end; values that are not review records are skipped. */
export async function readReviewRecords(transport: Transport, topic: string, signal?: AbortSignal): Promise<ReviewRecord[]> {
  const reviews: ReviewRecord[] = [];
  await transport.readToEnd(
    topic,
    (m) => {
      try {
        const r = JSON.parse(m.value?.toString('utf8') ?? '') as ReviewRecord;
        if (typeof r.id === 'string') reviews.push(r);
      } catch {
        // Not a review record: nothing can refer to it.
      }
    },
    signal === undefined ? {} : { signal },
  );
  return reviews;
}
