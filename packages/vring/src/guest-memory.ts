import { VringError } from './errors.js';

/** A u64 guest (physical) address. Where noted, a non-negative safe integer is accepted too. */
export type GuestAddress = bigint;

/** One mapped range of guest memory. */
export interface MemoryRegion {
  /** Start guest physical address (u64). */
  guestAddress: bigint;
  /** Bytes (a positive safe integer). */
  size: number;
  /** The local mapping. */
  buffer: ArrayBuffer | SharedArrayBuffer;
  /** Offset of the region inside `buffer` (default 0). */
  byteOffset?: number;
  /** Front-end virtual address of the region (vhost-user SET_MEM_TABLE), optional. */
  userAddress?: bigint;
}

const U64_LIMIT = 1n << 64n;
const TWO_32 = 4294967296;
/** hi words below this make hi * 2^32 + lo an exact double (< 2^53). */
const HI_SAFE = 0x200000;
const SAFE_END = 2 ** 53;

/** @internal A validated region with precomputed bounds. */
export interface RegionEntry {
  readonly region: Readonly<MemoryRegion>;
  readonly start: bigint;
  readonly end: bigint;
  /** start/end as numbers when end <= 2^53 (the fast path); otherwise -1. */
  readonly startNum: number;
  readonly endNum: number;
  readonly size: number;
  /** A plain view of exactly this region's bytes. */
  readonly bytes: Uint8Array;
  readonly userStart: bigint | undefined;
}

function toEntry(r: MemoryRegion): RegionEntry {
  if (typeof r !== 'object' || r === null)
    throw new VringError('INVALID_REGION', 'a region must be an object');
  const { guestAddress, size, buffer } = r;
  const byteOffset = r.byteOffset ?? 0;
  if (typeof guestAddress !== 'bigint' || guestAddress < 0n || guestAddress >= U64_LIMIT) {
    throw new VringError(
      'INVALID_REGION',
      `region guestAddress must be a u64 bigint (got ${String(guestAddress)})`,
    );
  }
  if (!Number.isSafeInteger(size) || size <= 0) {
    throw new VringError(
      'INVALID_REGION',
      `region size must be a positive safe integer (got ${String(size)})`,
    );
  }
  if (guestAddress + BigInt(size) > U64_LIMIT) {
    throw new VringError('INVALID_REGION', `region 0x${guestAddress.toString(16)}+${size} wraps past 2^64`);
  }
  const isBuffer =
    buffer instanceof ArrayBuffer ||
    (typeof SharedArrayBuffer !== 'undefined' && buffer instanceof SharedArrayBuffer);
  if (!isBuffer)
    throw new VringError('INVALID_REGION', 'region buffer must be an ArrayBuffer or SharedArrayBuffer');
  if (!Number.isSafeInteger(byteOffset) || byteOffset < 0 || byteOffset + size > buffer.byteLength) {
    throw new VringError(
      'INVALID_REGION',
      `region [${byteOffset}, ${byteOffset + size}) does not fit its buffer of ${buffer.byteLength} bytes`,
    );
  }
  const userAddress = r.userAddress;
  if (userAddress !== undefined) {
    if (typeof userAddress !== 'bigint' || userAddress < 0n || userAddress + BigInt(size) > U64_LIMIT) {
      throw new VringError(
        'INVALID_REGION',
        `region userAddress must be a u64 bigint (got ${String(userAddress)})`,
      );
    }
  }
  const end = guestAddress + BigInt(size);
  const small = end <= BigInt(SAFE_END);
  return {
    region: Object.freeze({ ...r, byteOffset }),
    start: guestAddress,
    end,
    startNum: small ? Number(guestAddress) : -1,
    endNum: small ? Number(end) : -1,
    size,
    bytes: new Uint8Array(buffer, byteOffset, size),
    userStart: userAddress,
  };
}

function hex(a: bigint | number): string {
  return `0x${a.toString(16)}`;
}

/**
 * Guest memory: regions mapping 64-bit guest addresses to local buffers.
 *
 * Translation is overflow-safe for the whole u64 range: a range is accepted
 * only if it lies inside ONE region. Addresses below 2^53 take a number-only
 * fast path; others are checked with BigInt.
 *
 * `replace()` swaps the whole region table at once and bumps `generation`.
 * Views handed out before (a DescriptorChain being processed) keep pointing at
 * the buffers they were made from, so a chain is never torn; queues re-resolve
 * their ring addresses when they see a new generation. A region whose
 * ArrayBuffer was detached (unmapped) translates nothing.
 */
export class GuestMemory {
  #entries: RegionEntry[] = [];
  #small: RegionEntry[] = [];
  #hasBig = false;
  #last: RegionEntry | undefined;
  #generation = 0;
  /** @internal Set by resolve(): byte offset inside the resolved entry's `bytes`. */
  resolvedOffset = 0;

  constructor(regions: MemoryRegion[] = []) {
    this.#install(regions);
    this.#generation = 0;
  }

  /** One region covering a whole buffer, at `guestAddress` (default 0). */
  static fromBuffer(buffer: ArrayBuffer | SharedArrayBuffer, guestAddress = 0n): GuestMemory {
    return new GuestMemory([{ guestAddress, size: buffer.byteLength, buffer }]);
  }

  /** Bumped by every replace/addRegion/removeRegion. */
  get generation(): number {
    return this.#generation;
  }

  get regions(): readonly MemoryRegion[] {
    return this.#entries.map((e) => e.region);
  }

  /** Replace the region table (live remap). Validated first: on error nothing changes. */
  replace(regions: MemoryRegion[]): void {
    if (!Array.isArray(regions)) throw new VringError('INVALID_REGION', 'regions must be an array');
    this.#install(regions);
  }

  addRegion(r: MemoryRegion): void {
    this.#install([...this.#entries.map((e) => e.region as MemoryRegion), r]);
  }

  /** Remove the region that starts at `guestAddress` and has exactly `size` bytes. */
  removeRegion(guestAddress: bigint, size: number): void {
    const i = this.#entries.findIndex((e) => e.start === BigInt(guestAddress) && e.size === size);
    if (i < 0) {
      throw new VringError('REGION_NOT_FOUND', `no region ${hex(BigInt(guestAddress))}+${size} to remove`);
    }
    this.#install(this.#entries.filter((_, j) => j !== i).map((e) => e.region as MemoryRegion));
  }

  #install(regions: MemoryRegion[]): void {
    const entries = regions.map(toEntry).sort((a, b) => (a.start < b.start ? -1 : a.start > b.start ? 1 : 0));
    for (let i = 1; i < entries.length; i++) {
      const prev = entries[i - 1]!;
      const cur = entries[i]!;
      if (cur.start < prev.end) {
        throw new VringError(
          'REGION_OVERLAP',
          `region ${hex(cur.start)}+${cur.size} overlaps region ${hex(prev.start)}+${prev.size}`,
        );
      }
    }
    const users = entries
      .filter((e) => e.userStart !== undefined)
      .sort((a, b) => (a.userStart! < b.userStart! ? -1 : 1));
    for (let i = 1; i < users.length; i++) {
      const prev = users[i - 1]!;
      const cur = users[i]!;
      if (cur.userStart! < prev.userStart! + BigInt(prev.size)) {
        throw new VringError(
          'REGION_OVERLAP',
          `user address ranges of regions ${hex(prev.start)} and ${hex(cur.start)} overlap`,
        );
      }
    }
    this.#entries = entries;
    this.#small = entries.filter((e) => e.startNum >= 0);
    this.#hasBig = this.#small.length !== entries.length;
    this.#last = undefined;
    this.#generation++;
  }

  /**
   * @internal Hot path: find the region holding [hi*2^32 + lo, +len), len < 2^32+1.
   * Returns the entry and sets `resolvedOffset`, or undefined when out of bounds.
   */
  resolve(lo: number, hi: number, len: number): RegionEntry | undefined {
    if (hi < HI_SAFE) {
      const addr = hi * TWO_32 + lo;
      const last = this.#last;
      if (
        last !== undefined &&
        addr >= last.startNum &&
        len <= last.endNum - addr &&
        last.bytes.length !== 0
      ) {
        this.resolvedOffset = addr - last.startNum;
        return last;
      }
      const small = this.#small;
      for (let i = 0; i < small.length; i++) {
        const e = small[i]!;
        if (addr >= e.startNum && addr <= e.endNum && len <= e.endNum - addr && e.bytes.length !== 0) {
          this.#last = e;
          this.resolvedOffset = addr - e.startNum;
          return e;
        }
      }
      if (!this.#hasBig) return undefined;
    }
    return this.#resolveBig((BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0), len);
  }

  #resolveBig(addr: bigint, len: number): RegionEntry | undefined {
    const end = addr + BigInt(len);
    for (const e of this.#entries) {
      if (addr >= e.start && end <= e.end && e.bytes.length !== 0) {
        this.resolvedOffset = Number(addr - e.start);
        return e;
      }
    }
    return undefined;
  }

  /** @internal Like resolve() for a public bigint|number address; throws on a malformed address. */
  resolveAddress(addr: bigint | number, len: number): RegionEntry | undefined {
    if (!Number.isSafeInteger(len) || len < 0) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `length must be a non-negative safe integer (got ${String(len)})`,
      );
    }
    if (typeof addr === 'number') {
      if (!Number.isSafeInteger(addr) || addr < 0) {
        throw new VringError(
          'INVALID_ARGUMENT',
          `address must be a non-negative safe integer (got ${String(addr)})`,
        );
      }
      if (len < TWO_32) return this.resolve(addr % TWO_32, Math.floor(addr / TWO_32), len);
      return this.#resolveBig(BigInt(addr), len);
    }
    if (typeof addr !== 'bigint' || addr < 0n || addr >= U64_LIMIT) {
      throw new VringError('INVALID_ARGUMENT', `address must be a u64 (got ${String(addr)})`);
    }
    if (len < TWO_32) return this.resolve(Number(addr & 0xffffffffn), Number(addr >> 32n), len);
    return this.#resolveBig(addr, len);
  }

  /** Whether [addr, addr+len) lies inside one region. */
  contains(addr: bigint | number, len: number): boolean {
    return this.resolveAddress(addr, len) !== undefined;
  }

  /**
   * A zero-copy view of [addr, addr+len). Throws VringError('ADDRESS_OUT_OF_BOUNDS')
   * unless the whole range is inside ONE region.
   */
  slice(addr: bigint | number, len: number): Uint8Array {
    const e = this.resolveAddress(addr, len);
    if (e === undefined) {
      throw new VringError(
        'ADDRESS_OUT_OF_BOUNDS',
        `guest range ${hex(addr)}+${len} is not inside one mapped region`,
      );
    }
    return e.bytes.subarray(this.resolvedOffset, this.resolvedOffset + len);
  }

  /** Front-end virtual address -> guest address, through the regions' userAddress. */
  userToGuest(userAddress: bigint, len: number): bigint {
    if (typeof userAddress !== 'bigint' || userAddress < 0n || userAddress >= U64_LIMIT) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `user address must be a u64 bigint (got ${String(userAddress)})`,
      );
    }
    if (!Number.isSafeInteger(len) || len < 0) {
      throw new VringError(
        'INVALID_ARGUMENT',
        `length must be a non-negative safe integer (got ${String(len)})`,
      );
    }
    const end = userAddress + BigInt(len);
    for (const e of this.#entries) {
      const u = e.userStart;
      if (u !== undefined && userAddress >= u && end <= u + BigInt(e.size))
        return e.start + (userAddress - u);
    }
    throw new VringError(
      'ADDRESS_OUT_OF_BOUNDS',
      `user range ${hex(userAddress)}+${len} is not inside one region with a user address`,
    );
  }
}
