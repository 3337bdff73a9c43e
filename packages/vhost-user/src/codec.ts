/**
 * Encoding and decoding of vhost-user messages, shared by both roles. Every
 * decoded message has been checked against its schema (messages.ts): version,
 * payload cap, exact payload size, fd count, reserved bits. Fds a message was
 * not supposed to carry are closed; on any error, all of its fds are closed.
 */
import { endianness } from 'node:os';
import type { Fd } from '@vipc/shm';
import {
  DEFAULT_MAX_PAYLOAD,
  FrontendRequest,
  HEADER_SIZE,
  MEMORY_REGION_SIZE,
  MEMORY_REGION_XEN_SIZE,
  VHOST_MEMORY_BASELINE_NREGIONS,
  VHOST_USER_MAX_CONFIG_SIZE,
  VHOST_USER_NEED_REPLY_MASK,
  VHOST_USER_REPLY_MASK,
  VHOST_USER_VERSION,
  VHOST_USER_VERSION_MASK,
  VHOST_USER_VRING_IDX_MASK,
  VHOST_USER_VRING_NOFD_MASK,
} from './defs.js';
import { VhostUserError } from './errors.js';
import {
  type Direction,
  type FdRule,
  type MemoryRegionDescription,
  type NamedSchema,
  type PayloadBodies,
  type PayloadKind,
  requestName,
  schemaOf,
} from './messages.js';

// vhost-user "Message Specification": all numbers are in native byte order.
// This codec writes little-endian; refuse to run where that is not native.
if (endianness() !== 'LE') {
  throw new VhostUserError(
    'vhost-user uses native byte order; this codec supports little-endian only',
    'INVALID_STATE',
  );
}

export interface Header {
  request: number;
  flags: number;
  size: number;
}

export interface CodecOptions {
  /** Payload cap in bytes (default 4096; every legal payload is far smaller). */
  maxPayload?: number;
  /** XEN_MMAP negotiated: memory regions carry two extra fields (40 bytes each). */
  xenMmap?: boolean;
  /** Most regions one SET_MEM_TABLE may carry (default 8). */
  maxRegions?: number;
}

/** A checked message with its typed body. */
export interface Message<K extends PayloadKind = PayloadKind> {
  /** Who sends requests on this channel. */
  direction: Direction;
  request: number;
  name: string;
  flags: number;
  needReply: boolean;
  isReply: boolean;
  kind: K;
  body: PayloadBodies[K];
  /** Fds the message carried by its schema; the receiver owns them. */
  fds: Fd[];
}

const U64_MAX = (1n << 64n) - 1n;

/** A plain Uint8Array copy (never a Buffer view of the receive buffer). */
function copyBytes(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length);
  out.set(b);
  return out;
}

export function closeAll(fds: readonly Fd[]): void {
  for (const fd of fds) {
    try {
      fd.close();
    } catch {
      // already closed
    }
  }
}

/** Parses and checks a 12-byte header (version, payload cap); before the payload is read. */
export function decodeHeader(bytes: Uint8Array, options: CodecOptions = {}): Header {
  if (bytes.length !== HEADER_SIZE) {
    throw new VhostUserError(
      `a vhost-user header is ${HEADER_SIZE} bytes (got ${bytes.length})`,
      'PARTIAL_MESSAGE',
    );
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, HEADER_SIZE);
  const header = { request: v.getUint32(0, true), flags: v.getUint32(4, true), size: v.getUint32(8, true) };
  if ((header.flags & VHOST_USER_VERSION_MASK) !== VHOST_USER_VERSION) {
    throw new VhostUserError(
      `unsupported vhost-user version ${header.flags & VHOST_USER_VERSION_MASK} in request ${header.request} (flags 0x${header.flags.toString(16)})`,
      'INVALID_VERSION',
    );
  }
  const cap = options.maxPayload ?? DEFAULT_MAX_PAYLOAD;
  if (header.size > cap) {
    throw new VhostUserError(
      `payload of ${header.size} bytes for request ${header.request} exceeds the cap of ${cap}`,
      'OVERSIZE_PAYLOAD',
    );
  }
  return header;
}

export function encodeHeader(header: Header): Buffer {
  const b = Buffer.alloc(HEADER_SIZE);
  b.writeUInt32LE(header.request >>> 0, 0);
  b.writeUInt32LE(header.flags >>> 0, 4);
  b.writeUInt32LE(header.size >>> 0, 8);
  return b;
}

function sizeError(name: string, kind: PayloadKind, got: number, want: string): VhostUserError {
  return new VhostUserError(
    `${name}: ${kind} payload must be ${want} bytes (got ${got})`,
    'INVALID_PAYLOAD_SIZE',
  );
}

function regionSize(options: CodecOptions): number {
  return options.xenMmap ? MEMORY_REGION_XEN_SIZE : MEMORY_REGION_SIZE;
}

function readRegion(v: DataView, off: number, options: CodecOptions, name: string): MemoryRegionDescription {
  const r: MemoryRegionDescription = {
    guestAddress: v.getBigUint64(off, true),
    size: v.getBigUint64(off + 8, true),
    userAddress: v.getBigUint64(off + 16, true),
    mmapOffset: v.getBigUint64(off + 24, true),
  };
  if (options.xenMmap) {
    r.xenMmapFlags = v.getUint32(off + 32, true);
    r.xenDomainId = v.getUint32(off + 36, true);
  }
  if (r.size === 0n) throw new VhostUserError(`${name}: memory region of size 0`, 'INVALID_MEMORY_REGION');
  if (r.guestAddress + r.size - 1n > U64_MAX || r.userAddress + r.size - 1n > U64_MAX) {
    throw new VhostUserError(`${name}: memory region wraps past 2^64`, 'INVALID_MEMORY_REGION');
  }
  if (r.mmapOffset + r.size > U64_MAX) {
    throw new VhostUserError(`${name}: memory region mmap_offset + size overflows`, 'INVALID_MEMORY_REGION');
  }
  return r;
}

/** Decodes and checks a payload of the given kind (size, counts, reserved fields). */
export function decodePayload<K extends PayloadKind>(
  kind: K,
  payload: Uint8Array,
  options: CodecOptions = {},
  name = kind as string,
): PayloadBodies[K] {
  const n = payload.length;
  const v = new DataView(payload.buffer, payload.byteOffset, n);
  const exact = (want: number): void => {
    if (n !== want) throw sizeError(name, kind, n, String(want));
  };
  const between = (min: number, max: number): void => {
    if (n < min || n > max) throw sizeError(name, kind, n, `${min} to ${max}`);
  };
  let body: unknown;
  switch (kind) {
    case 'none':
      exact(0);
      body = undefined;
      break;
    case 'u64':
      exact(8);
      body = v.getBigUint64(0, true);
      break;
    case 'vringState':
      exact(8);
      body = { index: v.getUint32(0, true), num: v.getUint32(4, true) };
      break;
    case 'vringAddress':
      exact(40);
      body = {
        index: v.getUint32(0, true),
        flags: v.getUint32(4, true),
        descUserAddr: v.getBigUint64(8, true),
        usedUserAddr: v.getBigUint64(16, true),
        availUserAddr: v.getBigUint64(24, true),
        logGuestAddr: v.getBigUint64(32, true),
      };
      break;
    case 'memoryTable': {
      if (n < 8) throw sizeError(name, kind, n, 'at least 8');
      const count = v.getUint32(0, true);
      const max = options.maxRegions ?? VHOST_MEMORY_BASELINE_NREGIONS;
      if (count > max) {
        throw new VhostUserError(`${name}: ${count} memory regions (at most ${max})`, 'TOO_MANY_REGIONS');
      }
      const rs = regionSize(options);
      exact(8 + count * rs);
      const regions: MemoryRegionDescription[] = [];
      for (let i = 0; i < count; i++) regions.push(readRegion(v, 8 + i * rs, options, name));
      body = { regions };
      break;
    }
    case 'singleRegion':
      exact(8 + regionSize(options));
      body = readRegion(v, 8, options, name);
      break;
    case 'log':
      exact(16);
      body = { size: v.getBigUint64(0, true), offset: v.getBigUint64(8, true) };
      break;
    case 'iotlb':
      // struct vhost_iotlb_msg: 26 bytes of fields, 32 with the C compiler's padding.
      between(26, 32);
      body = {
        iova: v.getBigUint64(0, true),
        size: v.getBigUint64(8, true),
        userAddress: v.getBigUint64(16, true),
        permissions: v.getUint8(24),
        type: v.getUint8(25),
      };
      break;
    case 'config': {
      if (n < 12) throw sizeError(name, kind, n, 'at least 12');
      const size = v.getUint32(4, true);
      if (size > VHOST_USER_MAX_CONFIG_SIZE) {
        throw new VhostUserError(
          `${name}: config size ${size} exceeds ${VHOST_USER_MAX_CONFIG_SIZE}`,
          'INVALID_PARAMETER',
        );
      }
      exact(12 + size);
      body = {
        offset: v.getUint32(0, true),
        size,
        flags: v.getUint32(8, true),
        data: copyBytes(payload.subarray(12, 12 + size)),
      };
      break;
    }
    case 'vringArea':
      exact(24);
      body = {
        u64: v.getBigUint64(0, true),
        size: v.getBigUint64(8, true),
        offset: v.getBigUint64(16, true),
      };
      break;
    case 'inflight':
      // 20 bytes of fields, 24 with the C compiler's padding (what QEMU and DPDK send).
      between(20, 24);
      body = {
        mmapSize: v.getBigUint64(0, true),
        mmapOffset: v.getBigUint64(8, true),
        numQueues: v.getUint16(16, true),
        queueSize: v.getUint16(18, true),
      };
      break;
    case 'shared':
      exact(16);
      body = { uuid: copyBytes(payload.subarray(0, 16)) };
      break;
    case 'deviceState':
      exact(8);
      body = { direction: v.getUint32(0, true), phase: v.getUint32(4, true) };
      break;
    case 'opaque':
      body = copyBytes(payload);
      break;
    default:
      throw new VhostUserError(`unknown payload kind ${String(kind)}`, 'INVALID_ARGUMENT');
  }
  return body as PayloadBodies[K];
}

function u64(b: Buffer, off: number, value: bigint | number, what: string): void {
  const x = BigInt(value);
  if (x < 0n || x > U64_MAX) throw new VhostUserError(`${what} must fit in a u64`, 'INVALID_ARGUMENT');
  b.writeBigUInt64LE(x, off);
}

function u32(b: Buffer, off: number, value: number, what: string): void {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) {
    throw new VhostUserError(`${what} must fit in a u32 (got ${value})`, 'INVALID_ARGUMENT');
  }
  b.writeUInt32LE(value, off);
}

function writeRegion(b: Buffer, off: number, r: MemoryRegionDescription, options: CodecOptions): void {
  u64(b, off, r.guestAddress, 'guestAddress');
  u64(b, off + 8, r.size, 'size');
  u64(b, off + 16, r.userAddress, 'userAddress');
  u64(b, off + 24, r.mmapOffset, 'mmapOffset');
  if (options.xenMmap) {
    u32(b, off + 32, r.xenMmapFlags ?? 0, 'xenMmapFlags');
    u32(b, off + 36, r.xenDomainId ?? 0, 'xenDomainId');
  }
}

/** Encodes a payload of the given kind. */
export function encodePayload<K extends PayloadKind>(
  kind: K,
  body: PayloadBodies[K],
  options: CodecOptions = {},
): Buffer {
  const fields = body as unknown as Record<string, number>;
  switch (kind) {
    case 'none':
      return Buffer.alloc(0);
    case 'u64': {
      const b = Buffer.alloc(8);
      u64(b, 0, body as bigint, 'u64');
      return b;
    }
    case 'vringState':
    case 'deviceState': {
      const b = Buffer.alloc(8);
      const [a, c] = kind === 'vringState' ? ['index', 'num'] : ['direction', 'phase'];
      u32(b, 0, fields[a as string] as number, a as string);
      u32(b, 4, fields[c as string] as number, c as string);
      return b;
    }
    case 'vringAddress': {
      const a = body as PayloadBodies['vringAddress'];
      const b = Buffer.alloc(40);
      u32(b, 0, a.index, 'index');
      u32(b, 4, a.flags, 'flags');
      u64(b, 8, a.descUserAddr, 'descUserAddr');
      u64(b, 16, a.usedUserAddr, 'usedUserAddr');
      u64(b, 24, a.availUserAddr, 'availUserAddr');
      u64(b, 32, a.logGuestAddr, 'logGuestAddr');
      return b;
    }
    case 'memoryTable': {
      const t = body as PayloadBodies['memoryTable'];
      const rs = regionSize(options);
      const b = Buffer.alloc(8 + t.regions.length * rs);
      u32(b, 0, t.regions.length, 'region count');
      t.regions.forEach((r, i) => {
        writeRegion(b, 8 + i * rs, r, options);
      });
      return b;
    }
    case 'singleRegion': {
      const b = Buffer.alloc(8 + regionSize(options));
      writeRegion(b, 8, body as PayloadBodies['singleRegion'], options);
      return b;
    }
    case 'log': {
      const l = body as PayloadBodies['log'];
      const b = Buffer.alloc(16);
      u64(b, 0, l.size, 'size');
      u64(b, 8, l.offset, 'offset');
      return b;
    }
    case 'iotlb': {
      const m = body as PayloadBodies['iotlb'];
      const b = Buffer.alloc(32);
      u64(b, 0, m.iova, 'iova');
      u64(b, 8, m.size, 'size');
      u64(b, 16, m.userAddress, 'userAddress');
      b.writeUInt8(m.permissions & 0xff, 24);
      b.writeUInt8(m.type & 0xff, 25);
      return b;
    }
    case 'config': {
      const c = body as PayloadBodies['config'];
      if (c.data.length !== c.size || c.size > VHOST_USER_MAX_CONFIG_SIZE) {
        throw new VhostUserError(
          `config data must be size bytes and at most ${VHOST_USER_MAX_CONFIG_SIZE}`,
          'INVALID_ARGUMENT',
        );
      }
      const b = Buffer.alloc(12 + c.size);
      u32(b, 0, c.offset, 'offset');
      u32(b, 4, c.size, 'size');
      u32(b, 8, c.flags, 'flags');
      b.set(c.data, 12);
      return b;
    }
    case 'vringArea': {
      const a = body as PayloadBodies['vringArea'];
      const b = Buffer.alloc(24);
      u64(b, 0, a.u64, 'u64');
      u64(b, 8, a.size, 'size');
      u64(b, 16, a.offset, 'offset');
      return b;
    }
    case 'inflight': {
      const f = body as PayloadBodies['inflight'];
      const b = Buffer.alloc(24);
      u64(b, 0, f.mmapSize, 'mmapSize');
      u64(b, 8, f.mmapOffset, 'mmapOffset');
      if (!Number.isInteger(f.numQueues) || f.numQueues < 0 || f.numQueues > 0xffff)
        throw new VhostUserError('numQueues must fit in a u16', 'INVALID_ARGUMENT');
      if (!Number.isInteger(f.queueSize) || f.queueSize < 0 || f.queueSize > 0xffff)
        throw new VhostUserError('queueSize must fit in a u16', 'INVALID_ARGUMENT');
      b.writeUInt16LE(f.numQueues, 16);
      b.writeUInt16LE(f.queueSize, 18);
      return b;
    }
    case 'shared': {
      const u = (body as PayloadBodies['shared']).uuid;
      if (u.length !== 16) throw new VhostUserError('a UUID is 16 bytes', 'INVALID_ARGUMENT');
      return Buffer.from(u);
    }
    case 'opaque':
      return Buffer.from(body as Uint8Array);
    default:
      throw new VhostUserError(`unknown payload kind ${String(kind)}`, 'INVALID_ARGUMENT');
  }
}

/** The fd count `rule` allows for `body`: [min, max, closeExtra]. */
function allowedFds(rule: FdRule, body: unknown): [number, number, boolean] {
  if (rule === 'perRegion') {
    const n = (body as PayloadBodies['memoryTable']).regions.length;
    return [n, n, false];
  }
  if (rule === 'unlessNoFdFlag') {
    const noFd = ((body as bigint) & BigInt(VHOST_USER_VRING_NOFD_MASK)) !== 0n;
    return noFd ? [0, 0, false] : [1, 1, false];
  }
  if ('exactly' in rule) return [rule.exactly, rule.exactly, false];
  return [rule.min, rule.max, rule.closeExtra === true];
}

function checkFdCount(name: string, rule: FdRule, body: unknown, fds: Fd[], truncated: boolean): Fd[] {
  const [min, max, closeExtra] = allowedFds(rule, body);
  if (truncated) {
    throw new VhostUserError(`${name}: more file descriptors than any message may carry`, 'INCORRECT_FDS');
  }
  if (fds.length < min || (fds.length > max && !closeExtra)) {
    const want = min === max ? `${min}` : `${min} to ${max}`;
    throw new VhostUserError(`${name}: carries ${fds.length} fds, must carry ${want}`, 'INCORRECT_FDS');
  }
  if (closeExtra) {
    // e.g. REM_MEM_REG: accepted for compatibility, closed unused.
    closeAll(fds);
    return [];
  }
  return fds;
}

function checkFields(schema: NamedSchema, body: unknown): void {
  if (schema.fds === 'unlessNoFdFlag') {
    const x = body as bigint;
    if ((x & ~BigInt(VHOST_USER_VRING_IDX_MASK | VHOST_USER_VRING_NOFD_MASK)) !== 0n) {
      throw new VhostUserError(
        `${schema.name}: reserved bits set in 0x${x.toString(16)} (only bits 0-8 are defined)`,
        'INVALID_PARAMETER',
      );
    }
  }
}

export interface RawMessage {
  header: Header;
  payload: Uint8Array;
  fds: Fd[];
  /** The kernel dropped fds beyond what the reader accepted. */
  fdsTruncated?: boolean;
}

/**
 * Decodes a request sent by `direction` ('frontend': the usual channel;
 * 'backend': the back-end channel). Throws VhostUserError for anything that
 * breaks the schema, after closing every fd the message carried.
 */
export function decodeRequest(direction: Direction, raw: RawMessage, options: CodecOptions = {}): Message {
  try {
    const { header } = raw;
    if (raw.payload.length !== header.size) {
      throw new VhostUserError(
        `${requestName(direction, header.request)}: got ${raw.payload.length} of ${header.size} payload bytes`,
        'PARTIAL_MESSAGE',
      );
    }
    if ((header.flags & VHOST_USER_REPLY_MASK) !== 0) {
      throw new VhostUserError(
        `${requestName(direction, header.request)}: a reply arrived where a request was expected`,
        'UNEXPECTED_REPLY',
      );
    }
    const schema = schemaOf(direction, header.request);
    if (schema === undefined) {
      throw new VhostUserError(
        `unknown ${direction === 'frontend' ? 'front-end' : 'back-end'} request ${header.request}`,
        'UNKNOWN_REQUEST',
      );
    }
    const body = decodePayload(schema.payload, raw.payload, options, schema.name);
    checkFields(schema, body);
    const fds = checkFdCount(schema.name, schema.fds, body, raw.fds, raw.fdsTruncated === true);
    return {
      direction,
      request: header.request,
      name: schema.name,
      flags: header.flags,
      needReply: (header.flags & VHOST_USER_NEED_REPLY_MASK) !== 0,
      isReply: false,
      kind: schema.payload,
      body,
      fds,
    };
  } catch (err) {
    closeAll(raw.fds);
    throw err;
  }
}

/**
 * Decodes the reply to `request` (sent by `direction`), expecting a payload of
 * `kind` and fds per `fdRule`. Closes all fds on error.
 */
export function decodeReply<K extends PayloadKind>(
  direction: Direction,
  request: number,
  kind: K,
  raw: RawMessage,
  options: CodecOptions & { fds?: FdRule } = {},
): Message<K> {
  try {
    const { header } = raw;
    const name = requestName(direction, request);
    if (raw.payload.length !== header.size) {
      throw new VhostUserError(
        `${name} reply: got ${raw.payload.length} of ${header.size} payload bytes`,
        'PARTIAL_MESSAGE',
      );
    }
    if ((header.flags & VHOST_USER_REPLY_MASK) === 0) {
      throw new VhostUserError(
        `${name}: expected a reply, got a message without the reply flag`,
        'UNEXPECTED_REPLY',
      );
    }
    if (header.request !== request) {
      throw new VhostUserError(
        `expected the reply to ${name}, got a reply to ${requestName(direction, header.request)}`,
        'UNEXPECTED_REPLY',
      );
    }
    if (
      direction === 'frontend' &&
      request === FrontendRequest.GET_CONFIG &&
      kind === 'config' &&
      raw.payload.length === 0
    ) {
      // vhost-user GET_CONFIG: "uses zero length of payload to indicate an error"
      throw new VhostUserError(
        'GET_CONFIG: the back-end failed the read (zero-length reply)',
        'REQUEST_FAILED',
      );
    }
    const body = decodePayload(kind, raw.payload, options, `${name} reply`);
    const fds = checkFdCount(
      `${name} reply`,
      options.fds ?? { exactly: 0 },
      body,
      raw.fds,
      raw.fdsTruncated === true,
    );
    return {
      direction,
      request,
      name,
      flags: header.flags,
      needReply: false,
      isReply: true,
      kind,
      body,
      fds,
    };
  } catch (err) {
    closeAll(raw.fds);
    throw err;
  }
}

/** Header + payload bytes of a request. */
export function encodeRequest<K extends PayloadKind>(
  request: number,
  kind: K,
  body: PayloadBodies[K],
  options: CodecOptions & { needReply?: boolean } = {},
): Buffer {
  const payload = encodePayload(kind, body, options);
  const flags = VHOST_USER_VERSION | (options.needReply ? VHOST_USER_NEED_REPLY_MASK : 0);
  return Buffer.concat([encodeHeader({ request, flags, size: payload.length }), payload]);
}

/** Header + payload bytes of a reply to `request`. */
export function encodeReply<K extends PayloadKind>(
  request: number,
  kind: K,
  body: PayloadBodies[K],
  options: CodecOptions = {},
): Buffer {
  const payload = encodePayload(kind, body, options);
  return Buffer.concat([
    encodeHeader({ request, flags: VHOST_USER_VERSION | VHOST_USER_REPLY_MASK, size: payload.length }),
    payload,
  ]);
}
