/**
 * Does a question carry the asker's personal data? A question that does ("my name is Alice and my
 * diagnosis is diabetes, what should I eat?") is personal: its answer is about that person, so it
 * is cached for its user only (or not at all), never in an entry that the tenant's other users
 * share.
 *
 * What counts: a name the asker gives ("my name is", "I am Alice", "call me"), an e-mail address,
 * a card, account, IBAN or phone number (a run of 8 or more digits, or an IBAN), a postal address
 * or post code, a date of birth, and the asker's own health, money or legal facts ("I was
 * diagnosed with", "my salary is 52,000", "I am being sued"). Generic first-person questions stay
 * shareable: "my card has not arrived", "why was my transfer declined?", "I was charged twice".
 *
 * Pure and linear in the length of the text: every pattern is a fixed phrase or bounded
 * repetition (no nested or unbounded quantifier can backtrack), and the digit runs and e-mail
 * addresses are found by scanning, not by a regex.
 */

/** What kind of personal data a question carries. */
export type PersonalDataKind = 'name' | 'email' | 'number' | 'iban' | 'address' | 'birth' | 'health' | 'money' | 'legal';

/** Whether a question carries personal data of its asker. */
export function containsPersonalData(text: string): boolean {
  return personalDataKinds(text).length > 0;
}

/** The kinds of personal data a question carries (empty when none), in a fixed order. */
export function personalDataKinds(text: string): PersonalDataKind[] {
  const kinds: PersonalDataKind[] = [];
  const plain = text.replace(/[\u2018\u2019]/g, "'").replace(/\s+/g, ' ');
  const lower = plain.toLowerCase();
  if (NAME.some((re) => re.test(lower)) || introducesName(plain)) kinds.push('name');
  if (hasEmailAddress(text)) kinds.push('email');
  if (longestDigitRun(text) >= MIN_IDENTIFYING_DIGITS || NUMBER_AFTER_LABEL.test(lower)) kinds.push('number');
  if (hasIban(text)) kinds.push('iban');
  if (ADDRESS.some((re) => re.test(lower)) || UK_POSTCODE.test(text)) kinds.push('address');
  if (BIRTH.some((re) => re.test(lower))) kinds.push('birth');
  if (HEALTH.some((re) => re.test(lower))) kinds.push('health');
  if (MONEY.some((re) => re.test(lower))) kinds.push('money');
  if (LEGAL.some((re) => re.test(lower))) kinds.push('legal');
  return kinds;
}

/** Digits in one run (spaces, dashes, dots or slashes between groups) that identify an account, card or phone. */
const MIN_IDENTIFYING_DIGITS = 8;

const NAME: readonly RegExp[] = [
  /\bmy (?:(?:first|last|full|middle|maiden|given|family|real) )?name(?: is|'s|:)/,
  /\bmy surname(?: is|'s|:)/,
  /\b(?:i go by|name's) [a-z]/,
];

/** "I am Alice", "I'm Bob": a capitalized word after a self-introduction. */
const INTRODUCTION = /\b(?:I am|I'm) (\p{Lu}\p{Ll}+)/gu;
/** Capitalized words that follow "I am" in questions without being a name. */
const NOT_A_NAME = new Set(('unable able not sure still trying looking having getting going wondering interested new confused '
  + 'worried concerned curious told travelling traveling abroad currently really very so just also here from in on at '
  + 'a an the in into over under your their our my this that there waiting done finished ready happy unhappy upset angry '
  + 'frustrated annoyed afraid scared sorry glad planning thinking moving living staying working asking writing calling '
  + 'contacting disappointed tired fed stuck lost locked blocked charged being having trying seeing').split(' '));

function introducesName(text: string): boolean {
  // An all-caps or title-case text capitalizes every word: capitalization tells nothing there.
  const words = text.split(/\s+/).filter((w) => /\p{L}/u.test(w));
  const capitalized = words.filter((w) => /^\p{Lu}/u.test(w)).length;
  if (words.length >= 4 && capitalized * 2 > words.length) return false;
  for (const m of text.matchAll(INTRODUCTION)) {
    if (!NOT_A_NAME.has(m[1].toLowerCase())) return true;
  }
  return false;
}

/** The longest whitespace-free token that may hold an e-mail address (254 characters) with punctuation around it. */
const MAX_EMAIL_TOKEN = 320;

/** A token that is an e-mail address: found per whitespace-separated token, each tested by an anchored pattern. */
function hasEmailAddress(text: string): boolean {
  if (!text.includes('@')) return false;
  for (const raw of text.split(/\s+/)) {
    // An address is at most 254 characters; a longer token is not one, and an unanchored trim of
    // its trailing punctuation would cost quadratic time on a hostile run of it.
    if (raw.length > MAX_EMAIL_TOKEN || !raw.includes('@')) continue;
    const token = raw.replace(/^[<("'[]+/, '').replace(/[>)"'\].,;:!?]+$/, '');
    if (/^[\w.%+-]+@[\w-]+(?:\.[\w-]+)+$/.test(token)) return true;
  }
  return false;
}

/**
 * The most digits in one run of digit groups, where a single space or dash may separate the
 * groups ("4111 1111 1111 1111", "+44 20 7946 0958", "12-34-56 87654321"). A comma, dot or slash
 * ends a run: "1,000,000" is an amount and "03/12/2026" a date, not an account. One pass.
 */
function longestDigitRun(text: string): number {
  let best = 0;
  let run = 0;
  let separated = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c >= 48 && c <= 57) {
      run++;
      separated = false;
      if (run > best) best = run;
    } else if ((c === 32 || c === 45) && run > 0 && !separated) {
      separated = true;
    } else {
      run = 0;
      separated = false;
    }
  }
  return best;
}

/** "account number 1234567", "card ending in 4242", "policy no. 55512": an identifying number, however short. */
const NUMBER_AFTER_LABEL = new RegExp('\\b(?:'
  + '(?:account|card|phone|mobile|cell|routing|passport|social security|licen[cs]e|policy|member(?:ship)?|customer|reference|tax|national insurance)'
  + '(?: number| no\\.?| #| id)(?: is|:)? ?#?\\d{4,}'
  + '|(?:iban|ssn|sort code|pin|cvv|cvc|passport)(?: is|:)? ?\\d{3,}'
  + '|ending (?:in|with) \\d{3,4}|last (?:4|four) digits (?:are |is |: ?)?\\d{4})');

/** An IBAN: two letters, two check digits, then groups of four letters or digits (spaced or not), at least six of them digits. */
function hasIban(text: string): boolean {
  for (const m of text.matchAll(/\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\b/gi)) {
    if (/\d{6}/.test(m[0].replace(/ /g, ''))) return true;
  }
  return false;
}

const ADDRESS: readonly RegExp[] = [
  /\bmy (?:(?:home|postal|mailing|billing|delivery|shipping|street|new|current) )?address(?: is|'s|:) ?(?:now |at |on )?\d/,
  /\bi live (?:at|on) \d/,
  /\bi live (?:at|on) [a-z]+ (?:street|road|avenue|lane|drive|boulevard|place|way)\b/,
  /\b\d{1,5} [a-z]{2,20}(?: [a-z]{2,20})? (?:street|st|road|rd|avenue|ave|lane|ln|boulevard|blvd|drive|dr|court|ct|terrace|crescent|strasse|straße|rue|calle|via)\b/,
  /\b(?:zip|zip code|postcode|post code|postal code)(?: is|:)? ?[a-z]{0,2}\d/,
];

/** A UK post code ("SW1A 1AA", "M1 1AE"), case-sensitive: lower-case text is not read as one. */
const UK_POSTCODE = /\b[A-Z]{1,2}\d[A-Z\d]? \d[A-Z]{2}\b/;

const BIRTH: readonly RegExp[] = [
  /\b(?:date of birth|d\.o\.b|dob|birth ?date|birthday)(?: is|:)? ?\d/,
  /\bmy (?:date of birth|birthday|dob)\b/,
  /\bi was born\b/,
  /\b(?:i am|i'm|im) \d{1,3} (?:years? old|yo)\b/,
];

const CONDITIONS = '(?:diabetes|diabetic|cancer|hiv|aids|asthma|depression|depressed|anxiety|adhd|autism|autistic|epilepsy|'
  + 'dementia|alzheimer|hepatitis|covid|tuberculosis|arthritis|celiac|coeliac|crohn|bipolar|schizophreni|pregnant|'
  + 'hypertension|high blood pressure|a heart condition|heart disease|kidney disease|an eating disorder|a disability|disabled|'
  + 'allergic|an allergy|allergies|a stroke|a tumou?r|insomnia|ptsd|ocd|an std|an sti|herpes|chlamydia|gonorrh)';
const HEALTH: readonly RegExp[] = [
  /\bmy (?:diagnosis|doctor|gp|physician|therapist|psychiatrist|condition|medication|medications|meds|prescription|illness|disease|symptoms|blood (?:pressure|sugar|type|test)|pregnancy|surgery|treatment|chemo|disability|allergy|allergies|mental health|health condition|medical (?:condition|history|records?))\b/,
  new RegExp(`\\bi (?:have|had|got|suffer from|am suffering from|live with|was diagnosed with|have been diagnosed with|am) ${CONDITIONS}`),
  new RegExp(`\\bi'(?:ve|m) (?:been diagnosed with |got |had )?${CONDITIONS}`),
  /\b(?:diagnosed with|tested positive for)\b/,
  /\b(?:i am|i'm|im) (?:pregnant|on (?:insulin|antidepressants|chemo|medication))\b/,
];

const AMOUNT = '(?:about |around |roughly |over |under |nearly |almost )?(?:[$€£¥] ?)?\\d';
/** An amount that is money, not a count: a currency sign, three or more digits, or "50k". */
const LARGE_AMOUNT = '(?:about |around |roughly |over |nearly |almost )?(?:[$€£¥] ?\\d|\\d[\\d,.]{2}|\\d{1,3}k\\b)';
const MONEY: readonly RegExp[] = [
  new RegExp(`\\bmy (?:annual |monthly |yearly |net |gross )?(?:salary|income|wage|wages|pay|earnings|debt|debts|net worth|savings|pension|rent|mortgage|loan|credit score|fico score|inheritance|bonus)(?: is| was| of| are|:| amounts to| comes to)? ${AMOUNT}`),
  new RegExp(`\\bi (?:earn|make|owe|inherited|am owed|have saved|saved|have debts of|have a debt of) ${LARGE_AMOUNT}`),
  /\bi(?: am|'m|m) (?:bankrupt|in debt|insolvent|unemployed|on benefits|on welfare)\b/,
  /\bi (?:declared|filed for|went) bankruptcy\b/,
];

const LEGAL: readonly RegExp[] = [
  /\bi (?:was|am|got|have been|'ve been|'m) (?:being )?(?:arrested|sued|convicted|indicted|prosecuted|charged with (?:a crime|fraud|theft|assault|murder|a felony|a misdemeanou?r|dui|dwi)|accused of (?:a crime|fraud|theft|assault)|jailed|imprisoned|deported|divorced|on probation|on parole)\b/,
  /\bi'?m (?:being )?(?:sued|prosecuted|divorced|on probation|on parole|getting divorced)\b/,
  /\bmy (?:lawyer|attorney|solicitor|court (?:case|date|hearing)|lawsuit|criminal record|conviction|arrest|divorce|custody|immigration status|probation|parole|dui|dwi)\b/,
  /\bi (?:have|got) a (?:criminal record|conviction|dui|dwi)\b/,
];
