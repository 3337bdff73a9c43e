/** memfd_create(2) flags (include/uapi/linux/memfd.h). */
export const MFD_ALLOW_SEALING = 0x0002;
export const MFD_HUGETLB = 0x0004;
export const MFD_HUGE_SHIFT = 26;

/** File seals, fcntl(2) F_ADD_SEALS / F_GET_SEALS (include/uapi/linux/fcntl.h). */
export const Seal = {
  /** No more seals may be added. */
  SEAL: 0x0001,
  /** The file may not shrink: protects every mapping from SIGBUS. */
  SHRINK: 0x0002,
  /** The file may not grow. */
  GROW: 0x0004,
  /** No writes at all, through write(2) or shared writable mappings. */
  WRITE: 0x0008,
  /** Existing writable mappings keep working; no new ones. */
  FUTURE_WRITE: 0x0010,
} as const;

/** The kernel's limit on file descriptors in one SCM_RIGHTS message (SCM_MAX_FD). */
export const MAX_FDS_PER_MESSAGE = 253;

/** st_mode file types (sys/stat.h). */
export const S_IFMT = 0o170000;
export const S_IFREG = 0o100000;
export const S_IFCHR = 0o020000;
export const S_IFSOCK = 0o140000;
