/*
 * confine.c - opening a path beneath the public folder, never outside it,
 * whatever the file system does meanwhile.
 *
 * The kernel does it best: openat2(RESOLVE_BENEATH) refuses any resolution
 * that leaves the folder, and says EAGAIN when a rename raced a ".." walk
 * (retried here a few times). It refuses every absolute symlink with EXDEV,
 * though, even one that points inside, and older kernels lack it. Then the
 * path is walked here, one component at a time, with openat(O_PATH |
 * O_NOFOLLOW) from the folder's own descriptor: a symlink is read and its
 * target walked the same way (an absolute one only when it names a place
 * in the folder), ".." never goes above the folder, and the decision is
 * made on descriptors, not on a path that can change between a check and
 * an open. Last, the descriptor actually opened is checked against the
 * folder, so a directory moved out of the folder during the walk does not
 * lead out of it either.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/openat2.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nofussd.h"

/* The kernel's own resolution; returns -2 when the walk must decide. */
static int open_kernel(struct nf_confine *c, const char *relpath, int flags)
{
	struct open_how how = {
	    .flags = (uint64_t)flags,
	    .resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS,
	};

	for (int i = 0; i < NF_MAX_OPEN_RETRIES; i++) {
		int fd = (int)syscall(SYS_openat2, c->rootfd, relpath, &how, sizeof how);
		if (fd >= 0)
			return fd;
		if (errno == EAGAIN) /* a rename raced a ".." walk: try again */
			continue;
		if (errno == ENOSYS || errno == EPERM) { /* old kernel or a seccomp filter */
			c->use_openat2 = false;
			return -2;
		}
		return errno == EXDEV ? -2 : -1; /* EXDEV: an absolute symlink, or out */
	}
	return -1;
}

/* Where fd is now, into out; -1 when /proc cannot tell. */
static int path_of_fd(int fd, char out[PATH_MAX])
{
	char link[64];
	ssize_t n;

	snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
	n = readlink(link, out, PATH_MAX - 1);
	if (n < 0)
		return -1;
	out[n] = '\0';
	return 0;
}

/* True when fd is, now, a file in the folder, wherever the folder is now
 * (a folder renamed away and replaced is still the one served until the
 * next reload opens the new one). */
static bool still_beneath(const char *root, int fd)
{
	char path[PATH_MAX];
	size_t rootlen = strlen(root);

	if (path_of_fd(fd, path) != 0) /* no /proc: cannot tell, so no */
		return false;
	return strncmp(path, root, rootlen) == 0 && (path[rootlen] == '/' || path[rootlen] == '\0');
}

/* The walk's state: the remaining path, and the folders it went through
 * (dirs[0] is the public folder itself, not owned). */
struct walk {
	char path[PATH_MAX];
	const char *next;
	int dirs[NF_MAX_WALK_DEPTH + 1];
	int depth;
	int links;
	char root[PATH_MAX];   /* where the folder is now */
	size_t rootlen;
};

/* Replaces the rest of the walk with a symlink's target followed by what
 * was left after the symlink. */
static int follow(struct walk *w, int linkfd)
{
	char target[PATH_MAX], joined[PATH_MAX];
	const char *from = target;
	ssize_t n = readlinkat(linkfd, "", target, sizeof target - 1);

	if (n < 0)
		return -1;
	target[n] = '\0';
	if (++w->links > NF_MAX_SYMLINKS)
		return errno = ELOOP, -1;
	if (target[0] == '/') {
		/* Absolute: only a place in the folder, walked from the folder. */
		if (strncmp(target, w->root, w->rootlen) != 0 ||
		    (target[w->rootlen] != '/' && target[w->rootlen] != '\0'))
			return errno = ENOENT, -1;
		from = target + w->rootlen;
		while (w->depth > 0)
			close(w->dirs[w->depth--]);
	}
	if ((size_t)snprintf(joined, sizeof joined, "%s/%s", from, w->next) >= sizeof joined)
		return errno = ENAMETOOLONG, -1;
	memcpy(w->path, joined, strlen(joined) + 1);
	w->next = w->path;
	return 0;
}

/* The next component of the walk into name; false when there is none. */
static bool next_component(struct walk *w, char name[NAME_MAX + 1], bool *last)
{
	const char *end;

	while (*w->next == '/')
		w->next++;
	if (*w->next == '\0')
		return false;
	end = strchrnul(w->next, '/');
	if ((size_t)(end - w->next) > NAME_MAX) {
		errno = ENAMETOOLONG;
		return false;
	}
	memcpy(name, w->next, (size_t)(end - w->next));
	name[end - w->next] = '\0';
	w->next = end;
	while (*end == '/')
		end++;
	*last = *end == '\0';
	return true;
}

/* Opens the last component, the very inode the walk looked at. */
static int open_last(struct walk *w, const char *name, int pathfd, const struct stat *seen,
                     int flags)
{
	struct stat st;
	int fd;

	if (flags & O_PATH) {
		if ((flags & O_DIRECTORY) && !S_ISDIR(seen->st_mode)) {
			close(pathfd);
			return errno = ENOTDIR, -1;
		}
		return pathfd;
	}
	fd = openat(w->dirs[w->depth], name, flags | O_NOFOLLOW);
	close(pathfd);
	if (fd >= 0 && (fstat(fd, &st) != 0 || st.st_dev != seen->st_dev || st.st_ino != seen->st_ino)) {
		close(fd); /* swapped since the walk looked: not what was checked */
		return errno = EAGAIN, -1;
	}
	return fd;
}

static int open_walk(const struct nf_confine *c, const char *relpath, int flags)
{
	struct walk w = {.depth = 0};
	char name[NAME_MAX + 1];
	bool last = false, failed = false;
	int fd = -1;

	w.dirs[0] = c->rootfd;
	if (path_of_fd(c->rootfd, w.root) != 0)
		memcpy(w.root, c->root, c->rootlen + 1);
	w.rootlen = strlen(w.root);
	if (relpath[0] == '/' || strlen(relpath) >= sizeof w.path)
		return errno = ENOENT, -1;
	memcpy(w.path, relpath, strlen(relpath) + 1);
	w.next = w.path;
	errno = 0;
	while (!failed && fd < 0 && next_component(&w, name, &last)) {
		struct stat st;
		int pfd;
		if (strcmp(name, ".") == 0)
			continue;
		if (strcmp(name, "..") == 0) {
			if (w.depth == 0) { /* above the folder */
				errno = ENOENT;
				failed = true;
			} else {
				close(w.dirs[w.depth--]);
			}
			continue;
		}
		pfd = openat(w.dirs[w.depth], name, O_PATH | O_NOFOLLOW | O_CLOEXEC);
		if (pfd < 0 || fstat(pfd, &st) != 0) {
			failed = true;
		} else if (S_ISLNK(st.st_mode)) {
			failed = follow(&w, pfd) != 0;
			close(pfd);
		} else if (last) {
			fd = open_last(&w, name, pfd, &st, flags);
			failed = fd < 0;
		} else if (!S_ISDIR(st.st_mode) || w.depth == NF_MAX_WALK_DEPTH) {
			close(pfd);
			errno = S_ISDIR(st.st_mode) ? ENAMETOOLONG : ENOTDIR;
			failed = true;
		} else {
			w.dirs[++w.depth] = pfd;
		}
	}
	if (errno == ENAMETOOLONG) /* from next_component */
		failed = true;
	if (!failed && fd < 0) /* the path ends at a folder ("a/..") */
		fd = openat(w.dirs[w.depth], ".", flags);
	while (w.depth > 0)
		close(w.dirs[w.depth--]);
	if (fd >= 0 && !still_beneath(w.root, fd)) {
		close(fd);
		return errno = ENOENT, -1;
	}
	return fd;
}

int nf_confine_open(struct nf_confine *c, const char *relpath, int flags)
{
	flags |= O_CLOEXEC;
	if (c->use_openat2) {
		int fd = open_kernel(c, relpath, flags);
		if (fd != -2)
			return fd;
	}
	for (int i = 0; i < NF_MAX_OPEN_RETRIES; i++) {
		int fd = open_walk(c, relpath, flags);
		if (fd >= 0 || errno != EAGAIN)
			return fd;
	}
	return -1;
}
