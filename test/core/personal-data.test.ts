import { containsPersonalData, personalDataKinds } from '../../lambdas/core/personal-data';

describe('personalDataKinds: questions that carry the asker\'s personal data', () => {
  test.each<[string, string]>([
    // names
    ['my name is alice and my diagnosis is diabetes, what should I eat?', 'name'],
    ['My full name is Alice Smith, can you check my order?', 'name'],
    ["my name's Bob, where is my parcel?", 'name'],
    ['I am Alice, can I get a loan?', 'name'],
    ['Hi, I’m Carol. Why was my card declined?', 'name'],
    ['my surname: Müller, is that on file?', 'name'],
    // contact and identifiers
    ['email me at bob@example.com please', 'email'],
    ['Is <carol.smith+bank@mail.example.co.uk> the address you have?', 'email'],
    ['call me on +44 20 7946 0958', 'number'],
    ['my card 4111 1111 1111 1111 is blocked', 'number'],
    ['account 12345678 shows a wrong balance', 'number'],
    ['my account number is 4821, why is it frozen?', 'number'],
    ['the card ending in 4242 was declined', 'number'],
    ['my IBAN is DE89 3704 0044 0532 0130 00', 'iban'],
    ['send it to GB82WEST12345698765432', 'iban'],
    // addresses and dates of birth
    ['I live at 221B Baker Street, do you deliver?', 'address'],
    ['ship to 12 Rose Lane please', 'address'],
    ['my address is 5 Elm Road, London', 'address'],
    ['is SW1A 1AA in your delivery area?', 'address'],
    ['my zip code is 94107, which branch is nearest?', 'address'],
    ['I was born in 1990, am I eligible?', 'birth'],
    ['date of birth: 02/01/1990, can I open an account?', 'birth'],
    ["I'm 17 years old, can I have a card?", 'birth'],
    // the asker's health, money and legal facts
    ['I have diabetes, what should I eat?', 'health'],
    ["I've been diagnosed with cancer, does my insurance cover it?", 'health'],
    ['my doctor says I need rest, can I delay payments?', 'health'],
    ["I'm pregnant, which plan suits me?", 'health'],
    ['my salary is 52,000, can I get a mortgage?', 'money'],
    ['I earn $4,000 a month, how much can I borrow?', 'money'],
    ['I owe 15k on my credit card, what now?', 'money'],
    ["I'm bankrupt, can I still open an account?", 'money'],
    ['I am being sued by my landlord, what are my options?', 'legal'],
    ['I was arrested last year, can I still apply?', 'legal'],
    ['my lawyer asked for my statements', 'legal'],
  ])('%s → %s', (text, kind) => {
    expect(personalDataKinds(text)).toContain(kind);
    expect(containsPersonalData(text)).toBe(true);
  });

  test('reports every kind it finds, in a fixed order', () => {
    expect(personalDataKinds('my name is alice and my diagnosis is diabetes, what should I eat?')).toEqual(['name', 'health']);
  });
});

describe('containsPersonalData: generic first-person questions stay shareable', () => {
  test.each([
    'my card has not arrived',
    'why was my transfer declined?',
    'I am still waiting on my card?',
    'I was charged twice for one purchase',
    'I have been charged with a fee for paying with my card.',
    'My address is incorrect on my file.',
    'How do I change my address?',
    'What is my name on the card?',
    'I am Unable to log in',
    'I AM TRAVELLING TO SPAIN, WILL MY CARD WORK?',
    'Can I transfer 1,000,000 euros?',
    'I made a transfer on 03/12/2026, where is it?',
    'Why is my balance not updated?',
    'my pin is blocked',
    'I make 2 transfers a month, is there a fee?',
    'Do you only use Visa or do you have Mastercard too?',
    'Can you call me back?',
    'what is the @ sign for in my statement',
    'Is the exchange rate in the app the real rate?',
    'How long does a transfer to 2 accounts take?',
  ])('%s', (text) => {
    expect(personalDataKinds(text)).toEqual([]);
  });
});

describe('personalDataKinds on tokens no e-mail address can be', () => {
  test('an address wrapped in punctuation is one; a token longer than any address is not', () => {
    expect(personalDataKinds('write to (bob@example.com).')).toEqual(['email']);
    expect(personalDataKinds(`@${'.'.repeat(32_000)}x`)).toEqual([]);
    expect(personalDataKinds(`a@${')'.repeat(32_000)}x`)).toEqual([]);
    expect(personalDataKinds(`${'a'.repeat(400)}@example.com`)).toEqual([]);
  });
});
