/**
 * Codes of every error raised by @vipc/vhost-user. The peer is untrusted, so
 * most of these name a protocol violation by the other side.
 */
export type VhostUserErrorCode =
  /** The stream ended in the middle of a message. */
  | 'PARTIAL_MESSAGE'
  /** A message carried a number of file descriptors its schema does not allow. */
  | 'INCORRECT_FDS'
  /** The header's version bits are not 1. */
  | 'INVALID_VERSION'
  /** The request id is not one the spec defines for this direction. */
  | 'UNKNOWN_REQUEST'
  /** The payload size exceeds the configured cap. */
  | 'OVERSIZE_PAYLOAD'
  /** The payload size does not match the message's schema. */
  | 'INVALID_PAYLOAD_SIZE'
  /** A field has a value the spec forbids (reserved bits, counts, ...). */
  | 'INVALID_PARAMETER'
  /** A reply arrived where a request was expected, or the wrong reply. */
  | 'UNEXPECTED_REPLY'
  /** A request arrived before the messages it depends on (e.g. SET_VRING_ADDR before SET_MEM_TABLE). */
  | 'OUT_OF_ORDER'
  /** A request needs a (protocol) feature that was not negotiated. */
  | 'FEATURE_NOT_NEGOTIATED'
  /** A queue index beyond the device's queues. */
  | 'INVALID_QUEUE_INDEX'
  /** A memory region that is empty, overflows, overlaps another, or cannot be mapped. */
  | 'INVALID_MEMORY_REGION'
  /** A region's fd is smaller than mmap_offset + memory_size. */
  | 'REGION_FD_TOO_SMALL'
  /** More memory regions than the back-end's slots. */
  | 'TOO_MANY_REGIONS'
  /** An address (ring or buffer) outside every memory region. */
  | 'ADDRESS_NOT_MAPPED'
  /** The peer's credentials were refused by the policy. */
  | 'PEER_REFUSED'
  /** The peer closed the connection. */
  | 'PEER_CLOSED'
  /** The peer answered a request with a failure status. */
  | 'REQUEST_FAILED'
  /** No answer in time. */
  | 'TIMEOUT'
  /** The object was closed. */
  | 'CLOSED'
  /** A virtqueue was found broken by @vipc/vring (the peer wrote garbage). */
  | 'QUEUE_BROKEN'
  /** The ring is full: the message was not taken (back-pressure). */
  | 'RING_FULL'
  /** An operation that the current state does not allow (e.g. sending before the link is up). */
  | 'INVALID_STATE'
  /** A bad argument from the local caller. */
  | 'INVALID_ARGUMENT'
  /**
   * The inflight region handed back with SET_INFLIGHT_FD (old-process or peer
   * memory) is inconsistent: bad sizes, indexes, counters or list loops.
   */
  | 'INFLIGHT_CORRUPT';

/** The one error class of @vipc/vhost-user. */
export class VhostUserError extends Error {
  override readonly name = 'VhostUserError';
  readonly code: VhostUserErrorCode;

  constructor(message: string, code: VhostUserErrorCode, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

export function isVhostUserError(err: unknown, code?: VhostUserErrorCode): err is VhostUserError {
  return err instanceof VhostUserError && (code === undefined || err.code === code);
}
