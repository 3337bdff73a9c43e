/**
 * The EVENT_IDX rule (2.7.7.2 / 2.7.10): having moved an index from `oldIdx` to
 * `newIdx`, notify iff the peer's event index lies in [oldIdx, newIdx), all
 * arithmetic on free-running u16 values.
 */
export function vringNeedEvent(eventIdx: number, newIdx: number, oldIdx: number): boolean {
  return ((newIdx - eventIdx - 1) & 0xffff) < ((newIdx - oldIdx) & 0xffff);
}
