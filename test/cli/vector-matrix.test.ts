import { JsMatrix, WasmMatrix, createVectorMatrix, simdModule } from '../../lambdas/core/semantic/vector-matrix';
import { cosine, normalize } from '../../lambdas/core/semantic/vectors';

/** Deterministic pseudo-random unit vectors. */
function randomVectors(count: number, dimensions: number, seed: number): Float32Array[] {
  let s = seed;
  const next = () => {
    s = (s * 16807) % 2147483647; // Park-Miller: exact in doubles
    return s / 2147483647 - 0.5;
  };
  return Array.from({ length: count }, () => normalize(Float32Array.from({ length: dimensions }, next)));
}

describe('VectorMatrix', () => {
  test('WebAssembly SIMD is available here, and used for multiples of 8 dimensions', () => {
    expect(simdModule()).toBeDefined();
    expect(createVectorMatrix(384)).toBeInstanceOf(WasmMatrix);
    expect(createVectorMatrix(1024)).toBeInstanceOf(WasmMatrix);
    expect(createVectorMatrix(10)).toBeInstanceOf(JsMatrix);
  });

  test.each([
    ['wasm', 384],
    ['wasm', 8],
    ['js', 384],
    ['js', 10],
  ])('%s, %i dimensions: similarities equal cosine() through growth and eviction', (kind, dimensions) => {
    const matrix = kind === 'wasm' ? new WasmMatrix(dimensions, simdModule()!) : new JsMatrix(dimensions);
    // Enough vectors to grow the memory several times (64 KiB pages, 1.5 KiB per 384-d vector).
    const vectors = randomVectors(300, dimensions, dimensions);
    const [query] = randomVectors(1, dimensions, 7);
    vectors.forEach((v) => matrix.append(v));
    expect(matrix.count).toBe(300);

    let sims = Array.from(matrix.similarities(query));
    expect(sims).toHaveLength(300);
    sims.forEach((s, i) => expect(Math.abs(s - cosine(query, vectors[i]))).toBeLessThan(1e-5));

    matrix.dropOldest(120);
    expect(matrix.count).toBe(180);
    sims = Array.from(matrix.similarities(query));
    sims.forEach((s, i) => expect(Math.abs(s - cosine(query, vectors[120 + i]))).toBeLessThan(1e-5));

    // Appending after an eviction, and the similarity of a vector with itself.
    matrix.append(query);
    expect(matrix.similarities(query)[180]).toBeCloseTo(1, 5);
  });

  test('an empty matrix has no similarities; other dimensions are refused', () => {
    for (const matrix of [createVectorMatrix(16), createVectorMatrix(5)]) {
      expect(matrix.similarities(new Float32Array(matrix.dimensions))).toHaveLength(0);
      expect(() => matrix.append(new Float32Array(3))).toThrow(/dimensions differ/);
      expect(() => matrix.similarities(new Float32Array(3))).toThrow(/dimensions differ/);
    }
    expect(() => createVectorMatrix(0)).toThrow(/positive integer/);
  });
});
