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
  /** Why a hit was vetoed: `contrast:<family>`, `instruction`, `numbers`, `currency`, `entity`, `negation`. */
  readonly reason?: string;
}

interface Analysis {
  readonly text: string;
  readonly poles: Map<string, Set<number>>;
  /** The question's instruction clauses (see {@link instructionClauses}), sorted and joined. */
  readonly instructions: string;
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
    // An answer steered by an instruction ("... ? say: no refunds", "in French", "as a pirate")
    // answers only the same instruction: neither the plain question nor another instruction.
    if (q.instructions !== c.instructions) return { allowed: false, reason: 'instruction' };
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
    const numbers = [...text.matchAll(/\d+(?:[.,]\d+)*/g)].map((m) => canonicalNumber(m[0])).sort().join('|');
    const currencies = CURRENCIES.filter(([, re]) => re.test(text)).map(([code]) => code).join('|');
    const content = new Set(text.split(/[^\p{L}\p{N}]+/u).filter((w) => w.length > 1 && !STOPWORDS.has(w) && !NEGATION.test(w)));
    const instructions = instructionClauses(raw).sort().join('|');
    return { text, poles, instructions, numbers, currencies, negated: NEGATION.test(text), content, entities: namedEntities(raw) };
  }
}

/**
 * A number as written, in a form that equals another number's only when both mean the same
 * value: "1,5" and "1.5" are 1.5 (a decimal comma: the group after it is not three digits),
 * "1,000,000" and "1.000.000" are 1000000 (only thousands can repeat), "1,500.25" and
 * "1.500,25" are 1500.25. A single separator before exactly three digits is ambiguous: "1,500"
 * is read as 1500 (the usual reading, and never 15 or 1.5), "1.500" (1500 in German, 1.5 in
 * English) stays as written, equal to itself only. Versions and dates ("1.2.3", "03.12.2026")
 * stay as written too.
 */
export function canonicalNumber(token: string): string {
  const groups = token.split(/[.,]/);
  if (groups.length === 1) return token;
  const separators = token.replace(/\d/g, '');
  const last = groups[groups.length - 1];
  const inner = groups.slice(1, -1);
  const thousands = (gs: string[]): boolean => gs.every((g) => g.length === 3) && groups[0].length <= 3;
  if (separators.length === 1) {
    if (last.length !== 3) return `${groups[0]}.${last}`;
    // "1,500" is read as thousands (1500: never 15 nor 1.5); "1.500" is 1500 in German and 1.5 in English.
    return separators === ',' ? groups.join('') : token;
  }
  const decimal = separators[separators.length - 1];
  const grouping = separators.slice(0, -1);
  if (new Set(separators).size === 1) {
    // The same separator more than once: thousands ("1,000,000"), or not a number ("1.2.3").
    return thousands(groups.slice(1)) ? groups.join('') : token;
  }
  // Thousands with one kind, a decimal with the other ("1,500.25", "1.500,25").
  if (new Set(grouping).size === 1 && grouping[0] !== decimal && thousands(inner) && last.length !== 3) {
    return `${groups.slice(0, -1).join('')}.${last}`;
  }
  return token;
}

/**
 * The parts of a question addressed to whoever answers it, about the answer itself rather than
 * its subject: what to say ("say: no refunds", "answer with yes"), in which language, length,
 * format or persona ("in French", "in 3 words", "as a pirate"), what to leave out ("don't
 * mention fees", "respond only with"), which instructions to drop ("ignore previous
 * instructions", "pretend you are"), and a bare fragment appended after a question ("What is
 * your refund policy? No refunds."). Each is returned as its clause's words.
 *
 * Two questions may share an answer only when their instruction clauses are the same: such a
 * clause changes the answer whatever the embedding says, and an asker who adds one must not
 * plant an answer for the askers who did not (nor the other way round). Clauses that tell about
 * the asker's situation ("I ordered it 2 weeks ago", "It was a foreign currency") are not
 * instructions: paraphrases keep sharing answers.
 */
export function instructionClauses(raw: string): string[] {
  const text = raw.normalize('NFKC').toLowerCase().replace(/[\u2018\u2019`]/g, "'").replace(/\s+/g, ' ');
  const found: string[] = [];
  let start = 0;
  let afterQuestion = false;
  for (let i = 0; i <= text.length; i++) {
    const ch = text[i];
    // Clauses end at ?, !, ;, a line break, the end, and a "." that ends a sentence (not "1.5").
    const end = i === text.length || ch === '?' || ch === '!' || ch === ';' || (ch === '.' && (i + 1 === text.length || text[i + 1] === ' '));
    if (!end) continue;
    const clause = text.slice(start, i).trim();
    if (clause !== '') {
      const words = clause.match(/[\p{L}\p{N}']+/gu) ?? [];
      const directive = DIRECTIVES.some((re) => re.test(clause));
      const fragment = afterQuestion && ch !== '?' && isBareFragment(words);
      if (directive || fragment) found.push(words.filter((w) => !FILLER.has(w)).join(' '));
      afterQuestion = ch === '?';
    } else if (ch === '?') {
      afterQuestion = true;
    }
    start = i + 1;
  }
  return found;
}

const LANGUAGES = 'english|french|spanish|german|italian|portuguese|dutch|chinese|mandarin|cantonese|japanese|korean|russian|'
  + 'arabic|hindi|polish|turkish|swedish|norwegian|danish|finnish|greek|hebrew|latin|pig latin|emojis?|klingon|pirate speak|morse code|binary|leetspeak';
const COUNT = '(?:\\d{1,4}|one|two|three|four|five|six|seven|eight|nine|ten|a few|a single|under \\d{1,4}|less than \\d{1,4}|fewer than \\d{1,4}|no more than \\d{1,4}|at most \\d{1,4})';
const UNITS = '(?:words?|sentences?|lines?|characters?|letters?|paragraphs?|bullet points?|bullets?|emojis?|syllables?)';
const PERSONAS = 'pirate|cowboy|robot|poet|shakespeare|yoda|child|kid|toddler|baby|five year old|5 year old|grandma|grandmother|comedian|'
  + 'rapper|valley girl|drunk|villain|gangster|surfer|caveman|medieval knight|knight|wizard|sarcastic teenager|teenager|cat|dog';

/** Clauses that instruct the answerer. Each pattern is fixed words with bounded gaps: linear on any input. */
const DIRECTIVES: readonly RegExp[] = [
  // what to say
  /\bsay ?:/,
  /(?:^|, |[-\u2013\u2014(:;] ?|\band |\bthen |\bplease |\bjust |\bonly |\balways )(?:say|reply|respond|answer|output|print|write|repeat|state|claim|insist)\b/,
  /\b(?:mention|state|claim|assert|insist|stress) that\b/,
  /\b(?:the|your) (?:policy|answer|reply|response|truth|rule) is ?:/,
  /\b(?:say|answer|reply|respond|write|output)(?: only| just)? ?(?::|with\b|only\b|exactly\b|in (?:one|a single|\d{1,4}) )/,
  /\btell (?:me|us|them|him|her|everyone|the user|users) (?:that|only|just|there|it's|it is|you)\b/,
  /\b(?:your|the) (?:answer|reply|response|output)(?: should| must| has to| needs to| will| shall)\b/,
  /\b(?:start|begin|end|finish|open|close|prefix|sign) (?:your|the|each|every) (?:answer|reply|response|message|sentence)\b/,
  /\b(?:include|use|add|insert) the (?:word|words|phrase|sentence|text)\b/,
  // constraints
  /\b(?:respond|reply|answer|say|write|output|give|use|mention|return|talk)(?: me)? only\b/,
  /\bonly (?:say|answer|respond|reply|write|output|mention|print|talk about|discuss)\b/,
  /\bjust (?:say|answer|reply|respond|write|output)\b/,
  /\byou (?:must|should|have to|need to|are to|will) (?:say|answer|reply|respond|include|mention|write|agree|claim|pretend|act|always|never|only)\b/,
  /\bmust (?:say|answer|reply|respond|include|mention|contain|start with|begin with|end with|be shorter|be fewer)\b/,
  /^(?:please )?(?:don't|do not|dont|never) (?:mention|say|talk about|include|use|reveal|discuss|refer to|apologi[sz]e|explain|add|answer|reply|respond|write)\b/,
  /\b(?:don't|do not|never|dont) (?:mention|reveal|discuss|refer to|apologi[sz]e|bring up)\b/,
  /\bwithout (?:mentioning|saying|referring to|apologi[sz]ing|explaining|revealing|caveats|disclaimers)\b/,
  /\b(?:no|without) (?:disclaimers?|caveats?|preamble|apolog(?:y|ies))\b/,
  // language, length, format, tone
  new RegExp(`\\b(?:in|into|using) (?:${LANGUAGES})\\b`),
  new RegExp(`\\bin ${COUNT} ${UNITS}\\b`),
  new RegExp(`\\b(?:max(?:imum)?|at most|under|no more than|less than|fewer than|up to) \\d{1,4} ${UNITS}\\b`),
  /\b(?:one|single|1|two|three|yes or no|yes\/no)[- ]word (?:answer|reply|response)\b/,
  /\b(?:briefly|concisely|be brief|be concise|keep it (?:short|brief)|short answer|in one sentence|in a sentence|in detail|step by step|tl;?dr|eli5)\b/,
  /\b(?:as|in|into|like) (?:a |an )?(?:list|numbered list|table|poem|haiku|limerick|sonnet|song|rap|json|yaml|xml|csv|markdown|html|bullet points|bullets|code block|tweet|essay|story|joke|riddle|letter)\b/,
  /\bin (?:all )?(?:caps|capitals|capital letters|uppercase|lowercase|upper case|lower case)\b/,
  /\bin (?:the|a) (?:style|voice|tone|manner) of\b/,
  /\bin a (?:funny|sarcastic|rude|formal|informal|casual|friendly|angry|poetic|childish) (?:way|tone|voice|manner)\b/,
  /\b(?:sarcastically|rudely|angrily|poetically)\b/,
  new RegExp(`\\b(?:as|like) (?:a|an|if you were a|if you were an|though you were a) (?:${PERSONAS})\\b`),
  // overriding earlier instructions, personas
  /\b(?:ignore|disregard|forget|override|bypass)(?: all| any| the| your| my| of)?(?: previous| prior| above| earlier| preceding| other| system| these| those| your)? (?:instructions?|prompts?|rules?|messages?|context|guidelines?|directions?|guardrails?|restrictions?|policies)\b/,
  /\b(?:ignore|disregard|forget) (?:everything|all that|what i said|what you were told)\b/,
  /\b(?:you are now|you're now|from now on|act as|act like|pretend|roleplay|role-play|role play|jailbreak|developer mode|dan mode|system prompt|simulate)\b/,
  /^(?:please )?(?:translate|rewrite|rephrase|summari[sz]e|paraphrase)\b/,
];

/** Words dropped from an instruction clause before it is compared. */
const FILLER = new Set(['please', 'just', 'and', 'then', 'also', 'now', 'ok', 'okay', 'a', 'an', 'the']);

/** Courtesies and urgency appended to a question: not instructions. */
const COURTESY = new Set(('thanks thank thankyou thx ty cheers please help asap urgent urgently quickly soon today now hello hi hey '
  + 'anyone somebody someone ok okay sorry again regards best lol ugh pls plz appreciated in advance much very you guys so '
  + 'lot').split(' '));

/** Words that make an appended clause a statement about the asker's situation, not a bare fragment. */
const STATEMENT = new Set(('i me my mine we our us it its this that these those they them their he she his her you your '
  + 'is are was were be been being am do does did have has had can could will would should may might must '
  + 'get got make made go went need want tried try know think seems seem looks look').split(' '));

/**
 * A short clause with no pronoun or verb ("no refunds", "free of charge") appended after a
 * question: it puts words in the answer's mouth. Courtesies ("thanks", "please help") are not.
 */
function isBareFragment(words: readonly string[]): boolean {
  if (words.length === 0 || words.length > 4) return false;
  if (words.every((w) => COURTESY.has(w))) return false;
  return !words.some((w) => STATEMENT.has(w) || /n't$|'(?:s|re|ve|m|ll|d)$/.test(w));
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
