/**
 * The published API (the jsii assembly that `npx projen compile` writes to `.jsii`) lets users
 * pass what they already run: no struct property and no public property of a class is typed as
 * a concrete construct class of this library, since an imported or user-made resource can only
 * implement its interface.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

const ASSEMBLY = resolve(__dirname, '../../.jsii');

interface TypeRef {
  readonly fqn?: string;
  readonly collection?: { readonly kind: string; readonly elementtype: TypeRef };
  readonly union?: { readonly types: TypeRef[] };
  readonly intersection?: { readonly types: TypeRef[] };
}
interface Property { readonly name: string; readonly type: TypeRef; readonly static?: boolean; readonly protected?: boolean }
interface Method { readonly name: string; readonly static?: boolean }
interface JsiiType {
  readonly fqn: string;
  readonly kind: 'class' | 'interface' | 'enum';
  readonly datatype?: boolean;
  readonly base?: string;
  readonly properties?: Property[];
  readonly methods?: Method[];
}

function loadAssembly(): { name: string; types: Record<string, JsiiType> } {
  if (!existsSync(ASSEMBLY)) {
    throw new Error(`${ASSEMBLY} is missing: run \`npx projen compile\` first (the test task compiles before jest)`);
  }
  return JSON.parse(readFileSync(ASSEMBLY, 'utf8'));
}

const assembly = loadAssembly();
const ownTypes = assembly.types;

/** Whether `fqn` is a class of this library that extends constructs.Construct, directly or not. */
function isOwnConstructClass(fqn: string): boolean {
  let current: string | undefined = fqn;
  while (current) {
    if (current === 'constructs.Construct') return true;
    const type: JsiiType | undefined = ownTypes[current];
    if (!type || type.kind !== 'class') return false;
    current = type.base;
  }
  return false;
}

/** The fully qualified names a type reference mentions (through arrays, maps, unions). */
function referencedFqns(ref: TypeRef): string[] {
  if (ref.fqn) return [ref.fqn];
  if (ref.collection) return referencedFqns(ref.collection.elementtype);
  const members = ref.union?.types ?? ref.intersection?.types ?? [];
  return members.flatMap(referencedFqns);
}

/** Only this library's construct classes count: aws-cdk-lib's (such as lambda.Function) are the user's to pass. */
function isOffending(fqn: string): boolean {
  return fqn.startsWith(`${assembly.name}.`) && isOwnConstructClass(fqn);
}

describe('the jsii assembly', () => {
  test('no struct or class property is typed as a construct class of this library', () => {
    const offenders: string[] = [];
    for (const type of Object.values(ownTypes)) {
      const isStruct = type.kind === 'interface' && type.datatype === true;
      if (!isStruct && type.kind !== 'class') continue;
      for (const property of type.properties ?? []) {
        if (property.protected) continue;
        for (const fqn of referencedFqns(property.type).filter(isOffending)) {
          offenders.push(`${type.fqn}.${property.name}: ${fqn}`);
        }
      }
    }
    expect(offenders).toEqual([]);
  });

  test('the check sees construct classes (it would catch an offender)', () => {
    expect(isOffending(`${assembly.name}.ResponseCache`)).toBe(true);
    expect(isOffending(`${assembly.name}.VectorStore`)).toBe(false);
    expect(isOffending(`${assembly.name}.RouterAuthorization`)).toBe(false);
  });

  test('offers ResponseCache.fromResponseCacheAttributes', () => {
    const cache = ownTypes[`${assembly.name}.ResponseCache`];
    expect(cache?.methods?.find((m) => m.name === 'fromResponseCacheAttributes' && m.static)).toBeDefined();
  });
});
