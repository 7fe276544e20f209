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
/**
 * Math markers. The arithmetic part (`12 + 3`, `x=4`) is written so that it cannot backtrack:
 * it starts only at the first digit of a run (`(?<!\d)`), and takes the run of digits and the
 * spaces after it atomically (`(?=(\d+))\1` is a possessive `\d+`), so a run of 30,000 digits
 * costs one pass instead of a quadratic search. It matches exactly where
 * `\d+\s*[+\-*\/^=<>]\s*\d+` does (see the classifier tests).
 */
const MATH = /\b(prove|proof|integral|derivative|equation|theorem|probability|calculate|compute|solve)\b|(?<!\d)(?=(\d+))\2(?=(\s*))\3[+\-*/^=<>]\s*\d|[∑∫√π]/i;
// "why" alone is left out on purpose: "why was my card declined?" is an FAQ, not a reasoning task.
const REASONING = /\b(explain|compare|contrast|analy[sz]e|evaluate|trade-?offs?|step[- ]by[- ]step|design|architecture|strategy|pros and cons|implications?|recommend)\b/i;

/** Feature weights of the default classifier; they sum to 1. */
export const HEURISTIC_WEIGHTS = { length: 0.2, turns: 0.15, code: 0.25, math: 0.2, reasoning: 0.2 } as const;

/**
 * The default classifier: a fixed, documented weighting of surface features of a request.
 *
 * score = 0.2·length + 0.15·turns + 0.25·code + 0.2·math + 0.2·reasoning, where
 * - length  = min(1, characters of the last user turn / 2,000) (a long chat is not a hard question)
 * - turns   = min(1, (messages − 1) / 2): a conversation with an earlier exchange counts fully
 * - code, math, reasoning = 1 when the last user turn carries one of the markers above, else 0
 *   (the system prompt is not searched for markers: it is the same for every request of a deployment).
 *
 * With the default thresholds [0.15, 0.35] for three tiers:
 * - a short FAQ-like question scores below 0.15 → small;
 * - one marker (code, math or "explain/compare/..."), a multi-turn conversation, or a long
 *   question (≥ 1,500 characters) → medium;
 * - two markers, a marker in a long question or a multi-turn conversation, or a long question
 *   in a multi-turn conversation → large.
 */
export class HeuristicClassifier implements ComplexityClassifier {
  classify(req: ChatRequest): Complexity {
    const w = HEURISTIC_WEIGHTS;
    const last = req.messages[req.messages.length - 1].text;
    const chars = last.length;
    const length = Math.min(1, chars / 2_000);
    const turns = Math.min(1, (req.messages.length - 1) / 2);
    const code = CODE.test(last) ? 1 : 0;
    const math = MATH.test(last) ? 1 : 0;
    const reasoning = REASONING.test(last) ? 1 : 0;
    const score = w.length * length + w.turns * turns + w.code * code + w.math * math + w.reasoning * reasoning;
    const reasons: string[] = [];
    if (length >= 0.25) reasons.push(`length=${chars}`);
    if (turns > 0) reasons.push(`turns=${req.messages.length}`);
    if (code) reasons.push('code');
    if (math) reasons.push('math');
    if (reasoning) reasons.push('reasoning');
    return { score: Math.round(score * 1000) / 1000, reasons };
  }
}

/**
 * Default thresholds for `n` tiers: evenly spread between 0.15 and 0.35, so the cheapest and
 * the most capable tier of any router take the same bands as in the three-tier default.
 */
export function defaultThresholds(tierCount: number): number[] {
  if (tierCount <= 1) return [];
  if (tierCount === 2) return [0.15];
  const step = (0.35 - 0.15) / (tierCount - 2);
  return Array.from({ length: tierCount - 1 }, (_, i) => Math.round((0.15 + i * step) * 1000) / 1000);
}

/** Index of the tier whose band holds `score`: the number of thresholds at or below it. */
export function tierIndexForScore(score: number, thresholds: readonly number[]): number {
  return thresholds.filter((t) => score >= t).length;
}
