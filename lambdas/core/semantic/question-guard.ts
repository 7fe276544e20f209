/**
 * A cheap lexical guard against the known failure of semantic caches: two questions that embed
 * close together but ask for different things ("enable" / "disable", "cancel" / "reinstate",
 * "50 euros" / "500 euros", "my card has arrived" / "has not arrived").
 *
 * It runs on the query and a cached question only (no model call, microseconds) and vetoes a
 * hit when they differ in a way that changes the answer.
 */

/**
 * A family of mutually exclusive meanings: a question that uses one pole never shares an answer
 * with a question that uses another. Each pole lists words or phrases (lower case) that mean it.
 */
export interface ContrastFamily {
  readonly name: string;
  readonly poles: readonly (readonly string[])[];
}

/** Families that hold in any domain. Add your own (products, plans, regions) through options. */
export const DEFAULT_CONTRAST_FAMILIES: readonly ContrastFamily[] = [
  {
    name: 'on-off',
    poles: [
      ['enable', 'enabled', 'activate', 'activated', 'activation', 'turn on', 'switch on', 'unblock', 'unlock', 'unlocked',
        'unfreeze', 'reactivate', 'reinstate', 'reinstated', 'restore', 'resume', 'reopen', 'opt in'],
      ['disable', 'disabled', 'deactivate', 'deactivated', 'deactivation', 'turn off', 'switch off', 'block', 'blocked', 'lock',
        'locked', 'freeze', 'frozen', 'suspend', 'suspended', 'pause', 'cancel', 'cancelled', 'canceled', 'cancellation',
        'terminate', 'opt out'],
    ],
  },
  {
    name: 'open-close',
    poles: [
      ['open', 'opened', 'create', 'created', 'start', 'started', 'sign up', 'subscribe', 'subscribed', 'join'],
      ['close', 'closed', 'delete', 'deleted', 'stop', 'stopped', 'unsubscribe', 'unsubscribed', 'leave', 'quit'],
    ],
  },
  { name: 'add-remove', poles: [['add', 'added', 'link', 'linked', 'connect', 'attach', 'install'], ['remove', 'removed', 'unlink', 'disconnect', 'detach', 'uninstall']] },
  { name: 'in-out', poles: [['deposit', 'top up', 'topup', 'add money', 'pay in', 'load money'], ['withdraw', 'withdrawal', 'cash out', 'take out', 'pay out']] },
  { name: 'send-receive', poles: [['send', 'sent', 'sending', 'outgoing', 'pay someone'], ['receive', 'received', 'receiving', 'incoming', 'get paid']] },
  { name: 'buy-sell', poles: [['buy', 'bought', 'purchase', 'purchased'], ['sell', 'sold', 'selling']] },
  { name: 'up-down', poles: [['increase', 'raise', 'higher', 'upgrade', 'extend'], ['decrease', 'reduce', 'lower', 'downgrade', 'shorten']] },
  { name: 'up-down-load', poles: [['upload', 'import'], ['download', 'export']] },
  { name: 'accept-reject', poles: [['accept', 'accepted', 'approve', 'approved', 'allow', 'allowed'], ['reject', 'rejected', 'decline', 'declined', 'deny', 'denied', 'refuse', 'refused']] },
  { name: 'before-after', poles: [['before'], ['after']] },
  { name: 'min-max', poles: [['minimum', 'min', 'least', 'lowest'], ['maximum', 'max', 'most', 'highest']] },
  { name: 'physical-virtual', poles: [['physical', 'plastic'], ['virtual', 'digital', 'disposable']] },
  { name: 'platform', poles: [['iphone', 'ios', 'apple pay', 'apple'], ['android', 'google pay', 'google']] },
];

const CURRENCIES: ReadonlyArray<readonly [string, RegExp]> = [
  ['USD', /\b(usd|dollars?|bucks)\b|\$/],
  ['EUR', /\b(eur|euros?)\b|€/],
  ['GBP', /\b(gbp|pounds?|sterling|quid)\b|£/],
  ['JPY', /\b(jpy|yen)\b|¥/],
  ['CHF', /\b(chf|francs?)\b/],
  ['CNY', /\b(cny|rmb|yuan)\b/],
  ['INR', /\b(inr|rupees?)\b/],
];

const NEGATION = /\b(not|no|never|cannot|without|nothing|none)\b|n't\b/;
const STOPWORDS = new Set(('a an the i me my we our you your it its is are was were be been am do does did to of in on for with at by from '
  + 'and or but if so can could would should will how what when where why which who this that these those there here please '
  + 'have has had just still yet any some').split(' '));

/** What the semantic levels ask of a guard: may the cached question answer the query? */
export interface PairGuard {
  compare(query: string, cached: string): GuardVerdict;
}

export interface GuardVerdict {
  readonly allowed: boolean;
  /** Why a hit was vetoed: `contrast:<family>`, `numbers`, `currency`, `entity`, `negation`. */
  readonly reason?: string;
}

interface Analysis {
  readonly text: string;
  readonly poles: Map<string, Set<number>>;
  readonly numbers: string;
  readonly currencies: string;
  readonly negated: boolean;
  readonly content: Set<string>;
  readonly entities: Set<string>;
}

export interface QuestionGuardOptions {
  /** Families added to {@link DEFAULT_CONTRAST_FAMILIES}. */
  readonly extraContrastFamilies?: readonly ContrastFamily[];
  /**
   * Veto a hit when one question is negated and the other is not, and their content words
   * overlap (Jaccard) at least this much. Off by default: measured on banking77 it cost 15 right
   * answers for every wrong one it prevented ("hasn't arrived" and "still waiting" mean the same).
   * @default - off
   */
  readonly negationOverlap?: number;
}

export class QuestionGuard implements PairGuard {
  private readonly families: readonly ContrastFamily[];
  private readonly negationOverlap?: number;
  private readonly patterns: Array<{ family: string; pole: number; pattern: RegExp }>;

  constructor(options: QuestionGuardOptions = {}) {
    this.families = [...DEFAULT_CONTRAST_FAMILIES, ...(options.extraContrastFamilies ?? [])];
    this.negationOverlap = options.negationOverlap;
    this.patterns = this.families.flatMap((family) =>
      family.poles.map((words, pole) => ({
        family: family.name,
        pole,
        pattern: new RegExp(`\\b(${words.flatMap(inflections).map(escapeRegExp).join('|')})\\b`),
      })),
    );
  }

  /** Whether `cached` may answer `query`. */
  compare(query: string, cached: string): GuardVerdict {
    const q = this.analyse(query);
    const c = this.analyse(cached);
    for (const [family, qPoles] of q.poles) {
      const cPoles = c.poles.get(family);
      // Vetoed only when the two name different poles and share none ("enable" vs "disable").
      if (cPoles && disjoint(qPoles, cPoles)) return { allowed: false, reason: `contrast:${family}` };
    }
    if (q.numbers !== '' && c.numbers !== '' && q.numbers !== c.numbers) return { allowed: false, reason: 'numbers' };
    if (q.currencies !== '' && c.currencies !== '' && q.currencies !== c.currencies) return { allowed: false, reason: 'currency' };
    if (q.entities.size > 0 && c.entities.size > 0 && disjoint(q.entities, c.entities)) return { allowed: false, reason: 'entity' };
    if (this.negationOverlap !== undefined && q.negated !== c.negated && jaccard(q.content, c.content) >= this.negationOverlap) {
      return { allowed: false, reason: 'negation' };
    }
    return { allowed: true };
  }

  private analyse(raw: string): Analysis {
    const text = ` ${raw.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}$€£¥'.,]+/gu, ' ')} `;
    const poles = new Map<string, Set<number>>();
    for (const { family, pole, pattern } of this.patterns) {
      if (pattern.test(text)) {
        let set = poles.get(family);
        if (!set) poles.set(family, (set = new Set()));
        set.add(pole);
      }
    }
    const numbers = [...text.matchAll(/\d+(?:[.,]\d+)*/g)].map((m) => m[0].replace(/,/g, '')).sort().join('|');
    const currencies = CURRENCIES.filter(([, re]) => re.test(text)).map(([code]) => code).join('|');
    const content = new Set(text.split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 1 && !STOPWORDS.has(w) && !NEGATION.test(w)));
    return { text, poles, numbers, currencies, negated: NEGATION.test(text), content, entities: namedEntities(raw) };
  }
}

/**
 * Capitalized words inside a sentence (Japan, Visa, Berlin) and short all-caps tokens (UK, EU):
 * named entities, as far as capitalization tells. Sentence-initial words and "I" are skipped.
 */
function namedEntities(raw: string): Set<string> {
  const entities = new Set<string>();
  for (const sentence of raw.split(/[.!?]+\s*/)) {
    const words = sentence.split(/[^\p{L}\p{N}']+/u).filter(Boolean);
    words.forEach((w, i) => {
      if (i > 0 && !/^I'/u.test(w) && /^\p{Lu}[\p{Ll}']+$/u.test(w)) entities.add(w.replace(/'s$/u, '').toLowerCase());
      else if (/^\p{Lu}{2,5}$/u.test(w) && w !== 'I') entities.add(w.toLowerCase());
    });
  }
  return entities;
}

/**
 * A word with its common English inflections (enable → enables, enabled, enabling; stop →
 * stopped, stopping), so the families need to list only base forms. Phrases are kept as given.
 * Forms that are not words never match, so over-generating is harmless.
 */
function inflections(word: string): string[] {
  if (word.includes(' ')) return [word];
  const forms = [word, `${word}s`, `${word}es`, `${word}ed`, `${word}ing`];
  if (word.endsWith('e')) forms.push(`${word}d`, `${word.slice(0, -1)}ing`);
  if (word.endsWith('y')) forms.push(`${word.slice(0, -1)}ies`, `${word.slice(0, -1)}ied`);
  if (/[^aeiou][aeiou][bdgklmnprt]$/.test(word)) forms.push(`${word}${word.slice(-1)}ed`, `${word}${word.slice(-1)}ing`);
  return forms;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/ /g, '\\s+');
}

function disjoint<T>(a: Set<T>, b: Set<T>): boolean {
  return [...a].every((x) => !b.has(x));
}

function jaccard(a: Set<string>, b: Set<string>): number {
  if (a.size === 0 && b.size === 0) return 1;
  let shared = 0;
  for (const x of a) if (b.has(x)) shared++;
  return shared / (a.size + b.size - shared);
}
