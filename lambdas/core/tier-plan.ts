import type { TierHintPolicy, TierRuntimeConfig } from '../../constructs/contract/runtime-config';

export interface TierPlan {
  /** Tiers to try, in order: the selected tier first, then its fallbacks. */
  readonly attempts: TierRuntimeConfig[];
  /** Whether the caller's tier hint decided the selection. */
  readonly hintHonoured: boolean;
}

/**
 * Decides which tier answers and which ones take over when it fails.
 *
 * @param classifiedIndex tier index the classifier chose
 * @param hint            tier id the caller asked for (already validated to exist)
 * @param policy          `ignore` hints, honour them only when `cheaper-only` (at or below the
 *                        classified tier), or honour `any` hint
 * @param fallbackOrder   explicit tier ids to try after the selected one; default: every more
 *                        capable tier in ascending order, then the cheaper ones in descending order
 */
export function planTiers(
  tiers: readonly TierRuntimeConfig[],
  classifiedIndex: number,
  hint: string | undefined,
  policy: TierHintPolicy,
  fallbackOrder?: readonly string[],
): TierPlan {
  let selected = Math.max(0, Math.min(classifiedIndex, tiers.length - 1));
  let hintHonoured = false;
  if (hint !== undefined && policy !== 'ignore') {
    const hinted = tiers.findIndex((t) => t.id === hint);
    if (hinted >= 0 && (policy === 'any' || hinted <= selected)) {
      selected = hinted;
      hintHonoured = true;
    }
  }
  const first = tiers[selected];
  let rest: TierRuntimeConfig[];
  if (fallbackOrder) {
    rest = fallbackOrder
      .filter((id) => id !== first.id)
      .map((id) => tiers.find((t) => t.id === id))
      .filter((t): t is TierRuntimeConfig => t !== undefined);
  } else {
    rest = [...tiers.slice(selected + 1), ...tiers.slice(0, selected).reverse()];
  }
  return { attempts: [first, ...rest], hintHonoured };
}
