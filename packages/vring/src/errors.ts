/** Why a vring operation failed. Peer violations also mark the queue broken. */
export type VringErrorCode =
  // configuration and caller errors (the queue stays usable)
  | 'INVALID_QUEUE_SIZE'
  | 'INVALID_REGION'
  | 'REGION_OVERLAP'
  | 'REGION_NOT_FOUND'
  | 'MISALIGNED_RING'
  | 'INVALID_ARGUMENT'
  | 'UNSUPPORTED_PLATFORM'
  // memory translation (a peer violation when the address came from the peer)
  | 'ADDRESS_OUT_OF_BOUNDS'
  // a mapping was closed (its ArrayBuffer detached) while still in use
  | 'MEMORY_UNMAPPED'
  // what a driver wrote, found by the device side
  | 'AVAIL_INDEX_OVERRUN'
  | 'INVALID_DESCRIPTOR_INDEX'
  | 'DESCRIPTOR_LOOP'
  | 'INVALID_INDIRECT_TABLE'
  | 'NESTED_INDIRECT'
  | 'INDIRECT_WITH_NEXT'
  | 'INDIRECT_NOT_NEGOTIATED'
  | 'CHAIN_TOO_LONG'
  | 'READABLE_AFTER_WRITABLE'
  | 'INVALID_BUFFER_ID'
  | 'DESCRIPTOR_NOT_AVAILABLE'
  // what a device wrote, found by the driver side
  | 'USED_INDEX_OVERRUN'
  | 'INVALID_USED_ID'
  | 'INVALID_USED_LENGTH'
  // a queue that failed before
  | 'QUEUE_BROKEN';

/** The one error class of @vipc/vring. */
export class VringError extends Error {
  override readonly name = 'VringError';
  readonly code: VringErrorCode;

  constructor(code: VringErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}
