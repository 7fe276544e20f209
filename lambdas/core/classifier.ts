import { ChatRequest } from './chat-request';

/** What a classifier says about a request: a score in [0, 1] and why. */
export interface Complexity {
  /** 0 = trivial, 1 = as hard as it gets. */
  readonly score: number;
  /** Features that contributed, for logs and debugging. */
  readonly reasons: string[];
}

/** Scores how much model a request needs. Implementations must be deterministic and cheap. */
export interface ComplexityClassifier {
  classify(req: ChatRequest): Complexity;
}

const CODE = /```|\b(function|class|def|import|return|SELECT|INSERT|UPDATE|regex|stack trace|exception|compile|typescript|python|java|sql)\b|=>|[{};]\s*$/im;
const MATH = /\b(prove|proof|integral|derivative|equation|theorem|probability|calculate|compute|solve)\b|\d+\s*[+\-*/^=<>]\s*\d+|[∑∫√π]/i;
const REASONING = /\b(why|explain|compare|contrast|analy[sz]e|evaluate|trade-?offs?|step[- ]by[- ]step|design|architecture|strategy|pros and cons|implications?|recommend)\b/i;

/**
 * The default classifier: a fixed, documented weighting of surface features.
 *
 * score = 0.35·length + 0.15·turns + 0.2·code + 0.15·math + 0.15·reasoning, where
 * - length  = min(1, characters of the conversation / 2,000)
 * - turns   = min(1, (messages − 1) / 6)
 * - code, math, reasoning = 1 when the last user turn (or the system prompt, for code) carries
 *   one of the markers above, else 0.
 *
 * With the default thresholds [0.25, 0.55] for three tiers, a short FAQ-like question goes to
 * the small tier, a long or multi-turn one or one that asks "why/compare/explain" to the medium
 * tier, and one that combines several markers (code plus reasoning, long math) to the large tier.
 */
export class HeuristicClassifier implements ComplexityClassifier {
  classify(req: ChatRequest): Complexity {
    const last = req.messages[req.messages.length - 1].text;
    const chars = req.messages.reduce((n, m) => n + m.text.length, 0) + (req.system?.length ?? 0);
    const length = Math.min(1, chars / 2_000);
    const turns = Math.min(1, (req.messages.length - 1) / 6);
    const code = CODE.test(last) ? 1 : 0;
    const math = MATH.test(last) ? 1 : 0;
    const reasoning = REASONING.test(last) ? 1 : 0;
    const score = 0.35 * length + 0.15 * turns + 0.2 * code + 0.15 * math + 0.15 * reasoning;
    const reasons: string[] = [];
    if (length > 0.25) reasons.push(`length=${chars}`);
    if (turns > 0) reasons.push(`turns=${req.messages.length}`);
    if (code) reasons.push('code');
    if (math) reasons.push('math');
    if (reasoning) reasons.push('reasoning');
    return { score: Math.round(score * 1000) / 1000, reasons };
  }
}

/**
 * Default thresholds for `n` tiers: evenly spread between 0.25 and 0.55, so the extremes of
 * a two-tier and a four-tier router behave like those of the three-tier default.
 */
export function defaultThresholds(tierCount: number): number[] {
  if (tierCount <= 1) return [];
  if (tierCount === 2) return [0.4];
  const step = (0.55 - 0.25) / (tierCount - 2);
  return Array.from({ length: tierCount - 1 }, (_, i) => Math.round((0.25 + i * step) * 1000) / 1000);
}

/** Index of the tier whose band holds `score`: the number of thresholds at or below it. */
export function tierIndexForScore(score: number, thresholds: readonly number[]): number {
  return thresholds.filter((t) => score >= t).length;
}
