/**
 * Vectors of one dimension packed in memory, and the similarities (dot products) of a query to
 * all of them: the inner loop of brute-force k-NN in {@link InMemoryVectorStore}.
 *
 * Where WebAssembly SIMD is available (Node >= 16.4) and the dimension is a multiple of 8 (256,
 * 384, 512, 768, 1024, 1536 are), a 20-instruction WebAssembly kernel computes them four lanes at
 * a time in single precision, as Valkey's FLOAT32 vectors and pgvector do; that is about ten times
 * faster than the JavaScript loop, which is the fallback (double-precision sums).
 */

export interface VectorMatrix {
  readonly dimensions: number;
  readonly count: number;
  /** Appends a vector (copied). */
  append(vector: Float32Array): void;
  /** Removes the `n` oldest vectors. */
  dropOldest(n: number): void;
  /**
   * Dot product of `query` with every vector, in order. The result may be a view into the matrix's
   * memory: read it before the next call on the matrix.
   */
  similarities(query: Float32Array): Float32Array;
}

/** The WebAssembly API this module uses (the project's TypeScript libs declare no WebAssembly types). */
interface WasmMemory {
  readonly buffer: ArrayBuffer;
  grow(pages: number): number;
}
interface WasmModule {
  readonly compiled: unknown;
}
interface WasmApi {
  readonly Module: new (bytes: Uint8Array) => object;
  readonly Instance: new (module: object) => { readonly exports: Record<string, unknown> };
  validate(bytes: Uint8Array): boolean;
}

const webAssembly = (globalThis as unknown as { WebAssembly?: WasmApi }).WebAssembly;

/** The fastest matrix available for `dimensions`. */
export function createVectorMatrix(dimensions: number): VectorMatrix {
  if (!(Number.isInteger(dimensions) && dimensions > 0)) throw new Error(`dimensions must be a positive integer, got ${dimensions}`);
  const module = dimensions % 8 === 0 ? simdModule() : undefined;
  return module ? new WasmMatrix(dimensions, module) : new JsMatrix(dimensions);
}

/** Plain JavaScript: a growable Float32Array and four double-precision accumulators. */
export class JsMatrix implements VectorMatrix {
  private vectors: Float32Array;
  private out = new Float32Array(0);
  count = 0;

  constructor(readonly dimensions: number) {
    this.vectors = new Float32Array(dimensions * 64);
  }

  append(vector: Float32Array): void {
    checkDimensions(vector, this.dimensions);
    const d = this.dimensions;
    if ((this.count + 1) * d > this.vectors.length) {
      const grown = new Float32Array(Math.max((this.count + 1) * d, this.vectors.length * 2));
      grown.set(this.vectors.subarray(0, this.count * d));
      this.vectors = grown;
    }
    this.vectors.set(vector, this.count * d);
    this.count++;
  }

  dropOldest(n: number): void {
    const k = Math.min(n, this.count);
    this.vectors.copyWithin(0, k * this.dimensions, this.count * this.dimensions);
    this.count -= k;
  }

  similarities(query: Float32Array): Float32Array {
    checkDimensions(query, this.dimensions);
    const d = this.dimensions;
    const n = this.count;
    if (this.out.length < n) this.out = new Float32Array(Math.max(n, this.out.length * 2));
    const vectors = this.vectors;
    const d4 = d - (d % 4);
    for (let e = 0, offset = 0; e < n; e++, offset += d) {
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      let i = 0;
      for (; i < d4; i += 4) {
        s0 += query[i] * vectors[offset + i];
        s1 += query[i + 1] * vectors[offset + i + 1];
        s2 += query[i + 2] * vectors[offset + i + 2];
        s3 += query[i + 3] * vectors[offset + i + 3];
      }
      for (; i < d; i++) s0 += query[i] * vectors[offset + i];
      this.out[e] = s0 + s1 + s2 + s3;
    }
    return this.out.subarray(0, n);
  }
}

/**
 * WebAssembly SIMD: one instance (with its own memory) per matrix. Memory layout, in bytes:
 * the query at 0, then the vectors, then the similarities of the last search.
 */
export class WasmMatrix implements VectorMatrix {
  private readonly memory: WasmMemory;
  private readonly dots: (query: number, vectors: number, count: number, dimensions: number, out: number) => void;
  private readonly vectorsAt: number;
  private floats: Float32Array;
  count = 0;

  constructor(readonly dimensions: number, module: WasmModule) {
    if (dimensions % 8 !== 0) throw new Error(`the SIMD kernel needs a multiple of 8 dimensions, got ${dimensions}`);
    const instance = new webAssembly!.Instance(module.compiled as object);
    this.memory = instance.exports.memory as WasmMemory;
    this.dots = instance.exports.dots as WasmMatrix['dots'];
    this.vectorsAt = dimensions * 4;
    this.floats = new Float32Array(this.memory.buffer);
  }

  append(vector: Float32Array): void {
    checkDimensions(vector, this.dimensions);
    this.reserve(this.vectorsAt + (this.count + 1) * this.dimensions * 4);
    this.floats.set(vector, this.dimensions * (1 + this.count));
    this.count++;
  }

  dropOldest(n: number): void {
    const k = Math.min(n, this.count);
    const start = this.dimensions;
    this.floats.copyWithin(start, start + k * this.dimensions, start + this.count * this.dimensions);
    this.count -= k;
  }

  similarities(query: Float32Array): Float32Array {
    checkDimensions(query, this.dimensions);
    const outAt = this.vectorsAt + this.count * this.dimensions * 4;
    this.reserve(outAt + this.count * 4);
    this.floats.set(query, 0);
    this.dots(0, this.vectorsAt, this.count, this.dimensions, outAt);
    return new Float32Array(this.memory.buffer, outAt, this.count);
  }

  /** Grows the memory (at least doubling it) to hold `bytes`. */
  private reserve(bytes: number): void {
    const have = this.memory.buffer.byteLength;
    if (bytes <= have) return;
    const page = 65_536;
    this.memory.grow(Math.ceil(Math.max(bytes - have, have) / page));
    this.floats = new Float32Array(this.memory.buffer);
  }
}

function checkDimensions(vector: Float32Array, dimensions: number): void {
  if (vector.length !== dimensions) throw new Error(`vector dimensions differ: ${vector.length} vs ${dimensions}`);
}

let compiled: WasmModule | null | undefined;

/** The compiled kernel, or undefined where WebAssembly SIMD is not available. */
export function simdModule(): WasmModule | undefined {
  if (compiled === undefined) {
    const bytes = dotsModuleBytes();
    compiled = webAssembly?.validate(bytes) ? { compiled: new webAssembly.Module(bytes) } : null;
  }
  return compiled ?? undefined;
}

/**
 * The binary of this module (hand-assembled; there is no toolchain to build it with):
 *
 *   (module
 *     (memory (export "memory") 1)
 *     ;; out[e] = dot(query, vectors[e]) for e < count; dims % 8 == 0; addresses in bytes
 *     (func (export "dots") (param $q i32) (param $v i32) (param $n i32) (param $d i32) (param $out i32)
 *       (local $e i32) (local $i i32) (local $row i32) (local $a v128) (local $b v128)
 *       (local.set $row (i32.shl (local.get $d) (i32.const 2)))
 *       (block $done (loop $rows
 *         (br_if $done (i32.ge_u (local.get $e) (local.get $n)))
 *         (local.set $b (local.tee $a (f32x4.splat (f32.const 0))))
 *         (local.set $i (i32.const 0))
 *         (block $end (loop $cols
 *           (br_if $end (i32.ge_u (local.get $i) (local.get $row)))
 *           (local.set $a (f32x4.add (local.get $a) (f32x4.mul
 *             (v128.load (i32.add (local.get $q) (local.get $i))) (v128.load (i32.add (local.get $v) (local.get $i))))))
 *           (local.set $b (f32x4.add (local.get $b) (f32x4.mul
 *             (v128.load offset=16 (i32.add (local.get $q) (local.get $i))) (v128.load offset=16 (i32.add (local.get $v) (local.get $i))))))
 *           (local.set $i (i32.add (local.get $i) (i32.const 32)))
 *           (br $cols)))
 *         (local.set $a (f32x4.add (local.get $a) (local.get $b)))
 *         (f32.store (i32.add (local.get $out) (i32.shl (local.get $e) (i32.const 2)))
 *           (f32.add (f32.add (f32.add (f32x4.extract_lane 0 (local.get $a)) (f32x4.extract_lane 1 (local.get $a)))
 *             (f32x4.extract_lane 2 (local.get $a))) (f32x4.extract_lane 3 (local.get $a))))
 *         (local.set $v (i32.add (local.get $v) (local.get $row)))
 *         (local.set $e (i32.add (local.get $e) (i32.const 1)))
 *         (br $rows)))))
 */
export function dotsModuleBytes(): Uint8Array {
  const leb = (n: number): number[] => {
    const out: number[] = [];
    do {
      const byte = n % 128;
      n = Math.floor(n / 128);
      out.push(n === 0 ? byte : byte + 128);
    } while (n !== 0);
    return out;
  };
  const section = (id: number, bytes: number[]): number[] => [id, ...leb(bytes.length), ...bytes];
  const name = (s: string): number[] => [...leb(s.length), ...Array.from(s, (c) => c.charCodeAt(0))];
  const get = (i: number) => [0x20, i];
  const set = (i: number) => [0x21, i];
  const tee = (i: number) => [0x22, i];
  const i32 = (n: number) => [0x41, n]; // small non-negative constants only (< 64)
  const I32_ADD = 0x6a;
  const I32_SHL = 0x74;
  const I32_GE_U = 0x4f;
  const F32_ADD = 0x92;
  const load = (offset: number) => [0xfd, 0x00, 0x00, ...leb(offset)]; // v128.load align=1
  const F32X4_MUL = [0xfd, 0xe6, 0x01];
  const F32X4_ADD = [0xfd, 0xe4, 0x01];
  const F32X4_SPLAT = [0xfd, 0x13];
  const lane = (l: number) => [0xfd, 0x1f, l]; // f32x4.extract_lane
  const BLOCK = [0x02, 0x40];
  const LOOP = [0x03, 0x40];
  const END = 0x0b;
  const [Q, V, N, D, OUT, E, I, ROW, A, B] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
  const code = [
    ...get(D), ...i32(2), I32_SHL, ...set(ROW),
    ...BLOCK, ...LOOP,
    ...get(E), ...get(N), I32_GE_U, 0x0d, 1, // br_if $done
    0x43, 0, 0, 0, 0, ...F32X4_SPLAT, ...tee(A), ...set(B),
    ...i32(0), ...set(I),
    ...BLOCK, ...LOOP,
    ...get(I), ...get(ROW), I32_GE_U, 0x0d, 1, // br_if $end
    ...get(A), ...get(Q), ...get(I), I32_ADD, ...load(0), ...get(V), ...get(I), I32_ADD, ...load(0), ...F32X4_MUL, ...F32X4_ADD, ...set(A),
    ...get(B), ...get(Q), ...get(I), I32_ADD, ...load(16), ...get(V), ...get(I), I32_ADD, ...load(16), ...F32X4_MUL, ...F32X4_ADD, ...set(B),
    ...get(I), ...i32(32), I32_ADD, ...set(I),
    0x0c, 0, // br $cols
    END, END,
    ...get(OUT), ...get(E), ...i32(2), I32_SHL, I32_ADD,
    ...get(A), ...get(B), ...F32X4_ADD, ...tee(A), ...lane(0),
    ...get(A), ...lane(1), F32_ADD, ...get(A), ...lane(2), F32_ADD, ...get(A), ...lane(3), F32_ADD,
    0x38, 0x02, 0x00, // f32.store align=4
    ...get(V), ...get(ROW), I32_ADD, ...set(V),
    ...get(E), ...i32(1), I32_ADD, ...set(E),
    0x0c, 0, // br $rows
    END, END,
    END,
  ];
  const body = [0x02, 0x03, 0x7f, 0x02, 0x7b, ...code]; // locals: 3 × i32, 2 × v128
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, [1, 0x60, 5, 0x7f, 0x7f, 0x7f, 0x7f, 0x7f, 0]), // type: (i32 × 5) -> ()
    ...section(3, [1, 0]), // one function of type 0
    ...section(5, [1, 0x00, 1]), // one memory, at least 1 page
    ...section(7, [2, ...name('dots'), 0x00, 0, ...name('memory'), 0x02, 0]),
    ...section(10, [1, ...leb(body.length), ...body]),
  ]);
}
