// Package share serves a host directory to a guest over 9P2000.L, the
// protocol the Linux guest's v9fs file system speaks: the back end of a
// virtio-9p device (devices/virtio/p9.go carries the messages).
//
// # 9P in one page
//
// 9P is a file protocol of requests (T-messages) and replies (R-messages).
// Each message starts with size[4] type[1] tag[2]; the client picks the
// tag, and the reply to a request carries the same tag. A session starts
// with Tversion, which settles the protocol ("9P2000.L") and msize, the
// largest message either side may send. Tattach then gives the client a fid
// (a number the client chooses) for the root of the tree; Twalk makes new
// fids for names below a fid, one path component at a time; Tlopen opens a
// fid, Tread/Twrite move data, Tclunk forgets a fid. A qid is the server's
// name for a file (type, version, and a unique path: here the inode
// number). 9P2000.L adds Linux's operations: Tgetattr/Tsetattr (stat,
// chmod, chown, truncate, utimes), Treaddir, Tlcreate, Tmkdir, Tsymlink,
// Tlink, Tmknod, Trenameat, Tunlinkat, Tstatfs, Tfsync, Tlock, xattrs. The
// guest kernel resolves symlinks itself (Treadlink, then new walks from its
// own root), so the server never follows a link on the guest's behalf.
//
// # Who does what
//
//	share.go     Share: the root directory, limits, Attach (a p9.Attacher)
//	view.go      a view: a root of kiln's holding only the bound directory or files
//	resolve.go   how every name is resolved beneath the root (openat2)
//	file.go      file: one host file held by an O_PATH descriptor (a p9.File)
//	attr.go      stat(2) results as 9P attributes and qids
//	open.go      open, read, write, fsync, locks
//	dir.go       create, mkdir, symlink, link, mknod, rename, unlink
//	readdir.go   directory listings with resumable offsets
//	setattr.go   chmod, chown, truncate, utimes
//	xattr.go     user.* extended attributes
//	server.go    Server: one message in, one reply out, for the device
//	session.go   a 9P session: the library's connection loop behind a pipe
//	message.go   the T-message layouts kiln checks before the library sees them
//	requests.go  what kiln adds to requests: counts, owners, fid bookkeeping
//	local.go     the requests kiln answers itself (Txattrwalk, Tgetlock)
//
// The protocol (decoding, fid and tag tables, the per-path locking that
// keeps renames and walks consistent) is github.com/hugelgupf/p9 (the
// 9P2000.L server from gVisor). kiln writes the file system and adapts the
// library to a virtqueue.
//
// # Why an adapter between the virtqueue and the library
//
// The library serves a byte stream (p9.Server.Handle reads T-messages from
// an io.Reader and writes R-messages to an io.Writer, running each request
// in its own goroutine); it has no call that handles one message. A
// virtqueue is not a stream: each descriptor chain holds one T-message and
// the room for its reply, and the reply must land in that chain. So each
// session runs the library's loop behind an in-memory pipe (session.go):
// Server.Handle writes the chain's message into the pipe and waits for the
// reply with the same tag. Three things make this exact:
//
//   - Kiln gives each request its own tag, unique while it is in flight,
//     and puts the guest's tag back into the reply. The guest may reuse a
//     tag (virtio matches replies by chain, not tag), and the library
//     drops a message whose tag is already in flight without any reply;
//     with kiln's tags that cannot happen. Tflush's old tag is translated
//     the same way.
//   - Kiln checks every T-message's layout (message.go) before the library
//     decodes it. The library answers a message it cannot decode with tag
//     NOTAG, which could not be matched to its chain, and treats a size
//     over msize as a broken connection; neither ever reaches it.
//   - Kiln bounds what the guest can make the host hold: read and readdir
//     counts are cut to msize and to the chain's room, xattr values to 64
//     KiB (1 MiB being set at once), fids to the share's descriptor
//     budget.
//
// Kiln also speaks plain 9P2000.L to the guest, as Linux does, and sends
// the library the multi-user variants of the creating requests itself
// (see Ownership); a session is one library connection, from a Tversion
// to the next Tversion or device reset. The session and each request
// hold the Share while they use its descriptors: when the VM ends, the
// device's reset does not wait for requests blocked on the host, and
// Share.Close refuses new ones (EIO) and closes the share's descriptors
// only when the last user is done, so that no descriptor number is
// reused under a request still running. In p9 v0.3.0 the end of a
// connection can race a goroutine the library has just started
// (session.go, endGrace).
//
// Kiln answers Txattrwalk and Tgetlock itself (local.go). In p9 v0.3.0
// the fid that Txattrwalk creates shares the walked fid's File and drops a
// reference on its parent it never took (handlers.go), so clunking it
// closes files the guest still uses; Tgetlock is not implemented there.
// Kiln also answers a Tunlinkat of a missing name: the library would keep
// the name in its path tree. (That tree keeps a node for every name the
// session walked that has not been removed through it: memory in
// proportion to the files the guest has looked at.)
//
// # The guest stays inside the root
//
// Every name from the guest is one path component, checked (no "/", not
// "." or "..", no NUL), and resolved by the kernel relative to the
// directory's descriptor with openat2(2) and RESOLVE_BENEATH |
// RESOLVE_NO_SYMLINKS | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV, O_NOFOLLOW
// (resolve.go). Files are held by O_PATH descriptors and changed through
// them (fchownat and utimensat with AT_EMPTY_PATH, fchmodat2, linkat,
// renameat, unlinkat relative to directory descriptors); no path string is
// ever built. So:
//
//   - ".." and absolute names cannot be sent; a symlink anywhere in the
//     tree, made by the guest or already on the host, is never followed by
//     kiln (the guest follows it in its own namespace, from its own root);
//   - a rename or hard link names two fids, both resolved beneath the root;
//   - RESOLVE_NO_XDEV stops walks at mount points below the root: the
//     guest sees the one file system the root is on (like find -xdev), so a
//     bind mount of / inside the shared directory is a name the guest can
//     neither enter nor stat (EXDEV), and qid paths (inode numbers) are
//     unique;
//   - creating never follows or reuses a name: O_CREAT|O_EXCL|O_NOFOLLOW.
//
// Device nodes are the other way out: a guest that could make or open a
// character device on the host would reach host hardware. Mknod makes
// FIFOs, sockets and regular files only, and Tlopen opens regular files and
// directories only (the guest kernel serves FIFOs and device nodes on a 9P
// mount itself, as special inodes, and never opens them on the server).
//
// The guest cannot set the setuid and setgid bits (the library keeps only
// the permission and sticky bits of a mode it decodes, and kiln keeps it
// so): a setuid file made by a guest would run with its owner's rights for
// host users. Files already on the host keep their bits, and the guest
// sees them.
//
// One thing the share cannot stop: a host process that moves a directory
// out of the share while the guest has it open takes the guest's handle
// along (the handle is the directory, wherever it goes).
//
// The guest's fids hold host descriptors (two for an open file), so the
// share has a budget: half of kiln's RLIMIT_NOFILE less 1024. Past it, a
// walk or open fails with ENFILE instead of starving the rest of kiln.
//
// Reopening a file for I/O is the one place a path is used:
// /proc/self/fd/N, for regular files only (a directory reopens as "."
// relative to its own descriptor). That is the kernel's way to turn an
// O_PATH descriptor into an open file; the magic link leads exactly to the
// file the descriptor holds, and since it is never a symlink, nothing
// further is followed. (chmod through /proc/self/fd would follow a symlink
// held that way: that is why chmod uses fchmodat2 and refuses symlinks.)
//
// # Read-only shares
//
// A read-only share refuses, in this back end, every operation that would
// change the host: create, mkdir, symlink, link, mknod, rename, unlink,
// setattr, xattr set and remove, write, and opening for write or with
// O_TRUNC all fail with EROFS, whatever the guest's mount flags say.
//
// # Ownership
//
// The Linux client attaches once per guest user (Tattach's n_uname; v9fs's
// access=user and access=client modes), and files created through that
// attach should belong to that user. Kiln remembers each fid's user and sends creations to the library
// as the multi-user variants that carry it (Tlcreate as Tucreate and so
// on); the new file is then chowned to the guest's uid and gid. That needs
// kiln to run as root; otherwise files belong to kiln's user and a guest
// chown fails with EPERM.
//
// # Locks
//
// Tlock takes POSIX record locks as open-file-description locks on the
// fid's open file (F_OFD_SETLK): the guest's open files exclude each other
// and host processes' locks, and a clunk releases them. Kiln never waits
// for a lock; a conflict answers "blocked" and the Linux client retries,
// so a contended lock never holds a request slot. Tgetlock asks
// F_OFD_GETLK.
//
// # Mounting it in the guest, and caching
//
//	mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=mmap TAG /mnt
//
// msize=512000 is the largest the Linux virtio transport takes, and the
// fastest. The cache mode decides when the guest sees the host's changes:
//
//   - cache=none: every read, write and stat goes to the host; host changes
//     show at once. Private mmaps (running programs) work; shared writable
//     mmaps do not (mmap fails with EINVAL).
//   - cache=mmap (kiln's default recommendation for a read-write share):
//     as none, except that pages of mmapped files are cached, so shared
//     writable mmaps work. Host changes show at once to read and stat; a
//     guest mapping of a file the host rewrites may keep old pages.
//   - cache=loose: the guest caches data, attributes and names and writes
//     back lazily: much faster for a tree only the guest changes (an OCI
//     root file system, a read-only share), but host changes may stay
//     invisible until the guest drops its caches or remounts. The guest also
//     keeps a fid, and so a host descriptor, for every file in its dentry
//     cache, which can reach the share's descriptor budget on huge trees.
//
// The virtio device runs at most 32 requests at once (virtio.P9); a
// request that blocks on the host (fsync on a slow disk) holds one of
// them, not the device.
package share
