/**
 * The back-end's view of the front-end's memory: every region fd of
 * SET_MEM_TABLE / ADD_MEM_REG mapped (memory_size + mmap_offset from offset 0,
 * the region starting at mmap_offset), exposed as a @vipc/vring GuestMemory
 * with user addresses for SET_VRING_ADDR translation.
 */
import { type Fd, fstat, hasSeals, type Mapping, mmap } from '@vipc/shm';
import { GuestMemory, type MemoryRegion } from '@vipc/vring';
import { closeAll } from './codec.js';
import { VhostUserError } from './errors.js';
import type { MemoryRegionDescription } from './messages.js';

export interface MemoryMapOptions {
  /** Most regions at once (GET_MAX_MEM_SLOTS; default 32). */
  maxRegions?: number;
  /** Seals (a @vipc/shm Seal bit set) every region fd must carry, e.g. Seal.SHRINK. */
  requireSeals?: number;
}

interface Mapped {
  desc: MemoryRegionDescription;
  mapping: Mapping<ArrayBuffer>;
  dev: number;
  ino: number;
}

const SAFE = BigInt(Number.MAX_SAFE_INTEGER);

function same(a: MemoryRegionDescription, b: MemoryRegionDescription): boolean {
  return (
    a.guestAddress === b.guestAddress &&
    a.size === b.size &&
    a.userAddress === b.userAddress &&
    a.mmapOffset === b.mmapOffset
  );
}

function hex(x: bigint): string {
  return `0x${x.toString(16)}`;
}

export class MemoryMap implements Disposable {
  readonly memory = new GuestMemory();
  readonly maxRegions: number;
  readonly #requireSeals: number;
  #mapped: Mapped[] = [];

  constructor(options: MemoryMapOptions = {}) {
    this.maxRegions = options.maxRegions ?? 32;
    this.#requireSeals = options.requireSeals ?? 0;
  }

  get regionCount(): number {
    return this.#mapped.length;
  }

  get descriptions(): MemoryRegionDescription[] {
    return this.#mapped.map((m) => m.desc);
  }

  /** Maps one region; throws (closing nothing: the caller owns fd) if it is bad. */
  #map(desc: MemoryRegionDescription, fd: Fd): Mapped {
    if (desc.size > SAFE || desc.mmapOffset > SAFE || desc.size + desc.mmapOffset > SAFE) {
      throw new VhostUserError(
        `memory region ${hex(desc.guestAddress)}+${hex(desc.size)} is too large`,
        'INVALID_MEMORY_REGION',
      );
    }
    let st: ReturnType<typeof fstat>;
    try {
      st = fstat(fd);
    } catch (err) {
      throw new VhostUserError(
        `memory region fd cannot be inspected: ${(err as Error).message}`,
        'INVALID_MEMORY_REGION',
        {
          cause: err,
        },
      );
    }
    if (!st.isRegularFile) {
      throw new VhostUserError(
        'memory region fd is not a regular file (memfd or hugetlbfs)',
        'INVALID_MEMORY_REGION',
      );
    }
    const size = Number(desc.size);
    const offset = Number(desc.mmapOffset);
    if (st.size < offset + size) {
      throw new VhostUserError(
        `memory region fd holds ${st.size} bytes, less than mmap_offset ${offset} + size ${size}`,
        'REGION_FD_TOO_SMALL',
      );
    }
    if (this.#requireSeals !== 0 && !hasSeals(fd, this.#requireSeals)) {
      throw new VhostUserError(
        `memory region fd lacks the required seals 0x${this.#requireSeals.toString(16)}`,
        'INVALID_MEMORY_REGION',
      );
    }
    // Map from offset 0 (mmap_offset need not be page aligned), rounded up to the
    // file's block size (hugetlbfs needs whole huge pages) when the file has it.
    let length = offset + size;
    const block = Math.max(st.blockSize, 1);
    const rounded = Math.ceil(length / block) * block;
    if (rounded <= st.size) length = rounded;
    let mapping: Mapping<ArrayBuffer>;
    try {
      mapping = mmap(fd, { length, offset: 0 });
    } catch (err) {
      throw new VhostUserError(
        `cannot map memory region: ${(err as Error).message}`,
        'INVALID_MEMORY_REGION',
        {
          cause: err,
        },
      );
    }
    return { desc, mapping, dev: st.dev, ino: st.ino };
  }

  static #region(m: Mapped): MemoryRegion {
    return {
      guestAddress: m.desc.guestAddress,
      size: Number(m.desc.size),
      buffer: m.mapping.buffer,
      byteOffset: Number(m.desc.mmapOffset),
      userAddress: m.desc.userAddress,
    };
  }

  #install(next: Mapped[]): void {
    try {
      this.memory.replace(next.map(MemoryMap.#region));
    } catch (err) {
      throw new VhostUserError(
        `memory regions rejected: ${(err as Error).message}`,
        'INVALID_MEMORY_REGION',
        {
          cause: err,
        },
      );
    }
    // user addresses must not overlap either (SET_VRING_ADDR translation)
    const byUser = [...next].sort((a, b) => (a.desc.userAddress < b.desc.userAddress ? -1 : 1));
    for (let i = 1; i < byUser.length; i++) {
      const p = byUser[i - 1]!.desc;
      if (p.userAddress + p.size > byUser[i]!.desc.userAddress) {
        throw new VhostUserError('memory regions overlap in user address space', 'INVALID_MEMORY_REGION');
      }
    }
  }

  /**
   * SET_MEM_TABLE: replaces the whole table (live remap). An identical table
   * (same regions, same files) keeps its mappings. Takes ownership of fds.
   * Returns whether anything changed.
   */
  setTable(regions: MemoryRegionDescription[], fds: Fd[]): boolean {
    try {
      if (regions.length > this.maxRegions) {
        throw new VhostUserError(
          `${regions.length} memory regions (at most ${this.maxRegions})`,
          'TOO_MANY_REGIONS',
        );
      }
      if (
        regions.length === this.#mapped.length &&
        regions.every((r, i) => {
          const m = this.#mapped[i]!;
          if (!same(r, m.desc)) return false;
          const st = fstat(fds[i]!);
          return st.dev === m.dev && st.ino === m.ino;
        })
      ) {
        return false;
      }
      const next: Mapped[] = [];
      try {
        regions.forEach((r, i) => {
          next.push(this.#map(r, fds[i]!));
        });
        const old = this.#mapped;
        this.#install(next);
        this.#mapped = next;
        for (const m of old) m.mapping.unmap();
      } catch (err) {
        for (const m of next) m.mapping.unmap();
        // keep the old table consistent with GuestMemory
        this.memory.replace(this.#mapped.map(MemoryMap.#region));
        throw err;
      }
      return true;
    } finally {
      // the mapping holds the memory; the descriptors are no longer needed
      closeAll(fds);
    }
  }

  /** ADD_MEM_REG. Takes ownership of fd. */
  add(desc: MemoryRegionDescription, fd: Fd): void {
    try {
      if (this.#mapped.length >= this.maxRegions) {
        throw new VhostUserError(`all ${this.maxRegions} memory slots are in use`, 'TOO_MANY_REGIONS');
      }
      const m = this.#map(desc, fd);
      try {
        this.#install([...this.#mapped, m]);
      } catch (err) {
        m.mapping.unmap();
        this.memory.replace(this.#mapped.map(MemoryMap.#region));
        throw err;
      }
      this.#mapped.push(m);
    } finally {
      closeAll([fd]);
    }
  }

  /** REM_MEM_REG: identified by guest address, user address and size (mmap offset ignored). */
  remove(desc: MemoryRegionDescription): void {
    const i = this.#mapped.findIndex(
      (m) =>
        m.desc.guestAddress === desc.guestAddress &&
        m.desc.userAddress === desc.userAddress &&
        m.desc.size === desc.size,
    );
    if (i < 0) {
      throw new VhostUserError(
        `no memory region ${hex(desc.guestAddress)}+${hex(desc.size)} (user ${hex(desc.userAddress)}) to remove`,
        'INVALID_MEMORY_REGION',
      );
    }
    const [m] = this.#mapped.splice(i, 1);
    this.memory.replace(this.#mapped.map(MemoryMap.#region));
    m!.mapping.unmap();
  }

  /** Front-end user address -> guest address, for a range of len bytes. */
  userToGuest(userAddress: bigint, len: number, what = 'address'): bigint {
    for (const m of this.#mapped) {
      const d = m.desc;
      if (userAddress >= d.userAddress && userAddress + BigInt(len) <= d.userAddress + d.size) {
        return d.guestAddress + (userAddress - d.userAddress);
      }
    }
    throw new VhostUserError(
      `${what} ${hex(userAddress)}+${len} is in no memory region`,
      'ADDRESS_NOT_MAPPED',
    );
  }

  /** Unmaps everything. */
  clear(): void {
    const old = this.#mapped;
    this.#mapped = [];
    this.memory.replace([]);
    for (const m of old) m.mapping.unmap();
  }

  [Symbol.dispose](): void {
    this.clear();
  }
}
