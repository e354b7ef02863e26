/**
 * A small seeded PRNG (mulberry32) so whatever must be reproducible from one
 * seed — Raft election timeouts and the simulator, replica placement ties,
 * the power-loss disk's cuts, the soak's schedule — draws from the same
 * stream for the same seed. Not for cryptography. Lives in common/ because
 * consensus/, blockdev/, daemon/ and the tests all use it and none of them
 * should reach into another's folder for it.
 */

/** Seeded pseudo-random source; deterministic code never touches Math.random. */
export interface Prng {
  /** Uniform integer in [0, maxExclusive). */
  nextInt(maxExclusive: number): number;
  /** Uniform float in [0, 1). */
  nextFloat(): number;
}

export class SeededPrng implements Prng {
  private state: number;

  constructor(seed: number) {
    // Mix the seed so nearby seeds give unrelated streams.
    this.state = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^ 0xc2b2ae35) >>> 0;
  }

  nextFloat(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  nextInt(maxExclusive: number): number {
    return Math.floor(this.nextFloat() * maxExclusive);
  }
}
